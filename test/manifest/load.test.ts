import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { HoardError } from '../../src/core/errors.ts';
import { parseJson } from '../../src/manifest/json.ts';
import type { ManifestProblem } from '../../src/manifest/load.ts';
import type { ArtifactEntry, ManifestDoc } from '../../src/manifest/types.ts';
import { ROOT, tmpDir } from '../helpers.ts';

const { checkManifest, fileNameFromUrl, loadManifest, parseManifest, resolveArtifacts } = await import('../../src/manifest/load.ts');

test(
  'the manifest module can be imported as a native ES module (the generated validator must not call require)',
  () => {
    const url = pathToFileURL(path.join(ROOT, 'src/manifest/load.ts')).href;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `await import(${JSON.stringify(url)})`], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr.split('\n').filter((l) => /^\w*Error\b/.test(l)).join('\n'));
  },
);

const HEX64 = 'a'.repeat(64);
const DIGEST = `sha256:${HEX64}`;

const REALISTIC = {
  $schema: './schemas/manifest.schema.json',
  version: 1,
  output: 'artifacts',
  artifacts: {
    'ceos-lab': {
      url: 'https://downloads.example.com/cEOS-lab-4.32.1F.tar.xz',
      mirrors: ['https://mirror.example.org/cEOS-lab-4.32.1F.tar.xz', 'http://10.0.0.1:8080/images/cEOS-lab-4.32.1F.tar.xz'],
      path: 'images/cEOS-lab-4.32.1F.tar.xz',
      digest: DIGEST,
      size: 512000000,
      checksums: { sha512: 'b'.repeat(128), sha256: HEX64, sha1: 'c'.repeat(40), md5: 'd'.repeat(32) },
      image: 'arista/ceos:4.32.1F',
      headers: { Authorization: 'Bearer ${ARISTA_TOKEN}' },
      link: 'auto',
      executable: false,
    },
    'vm-disk.qcow2': { url: 'https://images.example.net/disks/debian-12.qcow2', link: 'copy' },
    tool: { url: 'https://github.example.com/releases/download/v1.2.3/tool-linux-amd64', executable: true },
  },
};

/** A manifest with one artifact "a" whose entry is `entry` (merged over a valid url). */
function withArtifact(entry: Record<string, unknown>): Record<string, unknown> {
  return { version: 1, artifacts: { a: { url: 'https://x.example/a.bin', ...entry } } };
}

const text = (doc: unknown) => `${JSON.stringify(doc, null, 2)}\n`;

/** Parses a manifest that must be invalid and returns the E_MANIFEST error. */
function manifestError(doc: unknown, file = 'hoard.json'): HoardError {
  const src = typeof doc === 'string' ? doc : text(doc);
  try {
    parseManifest(file, src);
  } catch (err) {
    assert.ok(err instanceof HoardError, `expected a HoardError, got ${String(err)}`);
    assert.equal(err.code, 'E_MANIFEST');
    return err;
  }
  return assert.fail(`expected E_MANIFEST for ${src}`);
}

function problems(doc: unknown): ManifestProblem[] {
  return manifestError(doc).details.problems as ManifestProblem[];
}

/** Asserts that `doc` is rejected with a problem at `pointer`, positioned, and named in the message. */
function assertProblemAt(doc: unknown, pointer: string): ManifestProblem {
  const err = manifestError(doc);
  const list = err.details.problems as ManifestProblem[];
  const found = list.find((p) => p.pointer === pointer);
  assert.ok(found, `expected a problem at ${pointer}, got ${JSON.stringify(list)}`);
  assert.equal(typeof found.line, 'number');
  assert.equal(typeof found.column, 'number');
  assert.ok(err.message.includes('hoard.json'), err.message);
  assert.ok(err.message.includes(pointer), err.message);
  return found;
}

function assertValid(doc: unknown): ManifestDoc {
  return parseManifest('hoard.json', typeof doc === 'string' ? doc : text(doc));
}

describe('parseManifest: valid manifests', () => {
  test('the realistic example from DESIGN loads unchanged', () => {
    assert.deepEqual(assertValid(REALISTIC), REALISTIC);
  });

  test('a manifest with no artifacts yet is valid', () => {
    assert.deepEqual(assertValid({ version: 1, artifacts: {} }), { version: 1, artifacts: {} });
  });

  test('only "url" is required in an entry (digest and size come later)', () => {
    assertValid(withArtifact({}));
  });
});

describe('parseManifest: each schema violation is a problem with a pointer and a position', () => {
  test('missing "version" is reported at /version, positioned at the root object', () => {
    const found = assertProblemAt({ artifacts: {} }, '/version');
    assert.deepEqual([found.line, found.column], [1, 1]);
  });

  test('a version other than 1 is reported at /version, positioned at its value', () => {
    for (const version of [2, '1', 0, null]) {
      const found = assertProblemAt({ version, artifacts: {} }, '/version');
      assert.deepEqual([found.line, found.column], [2, 14]);
    }
  });

  test('missing "artifacts" is reported at /artifacts', () => {
    assertProblemAt({ version: 1 }, '/artifacts');
  });

  test('a manifest that is not an object is rejected at the root', () => {
    for (const doc of ['[]', 'null', '"hoard"']) assertProblemAt(doc, '');
  });

  test('an entry without "url" is reported at its url, positioned at the entry', () => {
    const src = '{\n  "version": 1,\n  "artifacts": {\n    "a": {\n      "path": "a.bin"\n    }\n  }\n}\n';
    const found = assertProblemAt(src, '/artifacts/a/url');
    assert.deepEqual([found.line, found.column], [4, 10]);
  });

  test('a url that is not http(s) is rejected', () => {
    for (const url of ['ftp://x.example/a.bin', 'file:///etc/passwd', 'downloads.example.com/a.bin', 'https://', '', 'javascript:alert(1)']) {
      assertProblemAt(withArtifact({ url }), '/artifacts/a/url');
    }
  });

  test(
    'a url that no URL parser accepts is rejected at /url even when "path" is set',
    () => {
      for (const url of ['https://exa mple.com/a.bin', 'https://x.example:99999/a.bin']) {
        assertProblemAt(withArtifact({ url, path: 'a.bin' }), '/artifacts/a/url');
      }
    },
  );

  test('a mirror that is not http(s) is reported at its index', () => {
    assertProblemAt(withArtifact({ mirrors: ['https://ok.example/a.bin', 'ftp://x.example/a.bin'] }), '/artifacts/a/mirrors/1');
  });

  test('a misspelled property ("digets") is rejected, not ignored, positioned at its value', () => {
    const src = [
      '{',
      '  "version": 1,',
      '  "artifacts": {',
      '    "ceos": {',
      '      "url": "https://x.example/ceos.tar.xz",',
      `      "digets": "${DIGEST}"`,
      '    }',
      '  }',
      '}',
    ].join('\n');
    const found = assertProblemAt(src, '/artifacts/ceos/digets');
    assert.deepEqual([found.line, found.column], [6, 17]);
  });

  test('an unknown top-level property ("outptu") is rejected', () => {
    assertProblemAt({ version: 1, outptu: 'x', artifacts: {} }, '/outptu');
  });

  test('a malformed digest is rejected', () => {
    for (const digest of [HEX64, `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, `sha256:${'a'.repeat(65)}`, `sha512:${'a'.repeat(128)}`, `sha256:${'g'.repeat(64)}`]) {
      assertProblemAt(withArtifact({ digest }), '/artifacts/a/digest');
    }
  });

  test('a negative, fractional or string size is rejected; 0 is fine', () => {
    for (const size of [-1, 1.5, '10', null]) assertProblemAt(withArtifact({ size }), '/artifacts/a/size');
    assertValid(withArtifact({ size: 0 }));
  });

  test('checksums with the wrong hex length, uppercase hex or an unknown algorithm are rejected', () => {
    const bad: Array<[Record<string, string>, string]> = [
      [{ sha512: HEX64 }, '/artifacts/a/checksums/sha512'],
      [{ sha256: 'a'.repeat(63) }, '/artifacts/a/checksums/sha256'],
      [{ sha1: 'a'.repeat(41) }, '/artifacts/a/checksums/sha1'],
      [{ md5: 'a'.repeat(31) }, '/artifacts/a/checksums/md5'],
      [{ md5: 'A'.repeat(32) }, '/artifacts/a/checksums/md5'],
      [{ crc32: 'abcd1234' }, '/artifacts/a/checksums/crc32'],
    ];
    for (const [checksums, pointer] of bad) assertProblemAt(withArtifact({ checksums }), pointer);
  });

  test('a checksums.sha256 that disagrees with digest is a problem', () => {
    assertProblemAt(withArtifact({ digest: DIGEST, checksums: { sha256: 'b'.repeat(64) } }), '/artifacts/a/checksums/sha256');
  });

  test('a link mode outside the enum is rejected; every documented mode is accepted', () => {
    for (const link of ['symlink', 'AUTO', '', true]) assertProblemAt(withArtifact({ link }), '/artifacts/a/link');
    for (const link of ['auto', 'reflink', 'hardlink', 'copy']) assertValid(withArtifact({ link }));
  });

  test('a non-boolean executable is rejected', () => {
    assertProblemAt(withArtifact({ executable: 'yes' }), '/artifacts/a/executable');
  });

  test('an invalid artifact name is reported at that name', () => {
    for (const name of ['-bad', 'a b', '.hidden', '_x', 'x/y', 'é', 'a'.repeat(129)]) {
      const doc = { version: 1, artifacts: { [name]: { url: 'https://x.example/a.bin' } } };
      assertProblemAt(doc, `/artifacts/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`);
    }
  });

  test('valid artifact names are accepted', () => {
    for (const name of ['a', '0', 'ceos-lab_4.32.1F', 'A.b-c_d', 'a'.repeat(128)]) {
      assertValid({ version: 1, artifacts: { [name]: { url: 'https://x.example/a.bin' } } });
    }
  });

  test(
    'one invalid artifact name is one problem, not an extra one at /artifacts',
    () => {
      const list = problems({ version: 1, artifacts: { '-bad': { url: 'https://x.example/a.bin' } } });
      assert.deepEqual(list.map((p) => p.pointer), ['/artifacts/-bad']);
    },
  );

  test('an invalid header name is reported at that header; valid names and ${VAR} values are accepted', () => {
    for (const name of ['Bad Header', 'X:Y', 'X(Y)', '']) {
      assertProblemAt(withArtifact({ headers: { [name]: 'v' } }), `/artifacts/a/headers/${name}`);
    }
    assertProblemAt(withArtifact({ headers: { 'X-Count': 3 } }), '/artifacts/a/headers/X-Count');
    assertValid(withArtifact({ headers: { Authorization: 'Bearer ${TOKEN}', 'X-Api-Key': '${KEY}', 'x-lower': '' } }));
  });

  test('valid container image references are accepted', () => {
    for (const image of [
      'arista/ceos:4.32.1F',
      'ceos',
      'localhost:5000/x/y:tag',
      'localhost/ceos',
      `registry.example.com/a/b@sha256:${HEX64}`,
      `registry.example.com:443/a/b:1.0@sha256:${HEX64}`,
      'ghcr.io/srl-labs/srlinux:24.3.1',
      'my_image__x-y.z',
    ]) {
      assertValid(withArtifact({ image }));
    }
  });

  test('invalid container image references are rejected', () => {
    for (const image of ['Arista/CEOS', 'ceos:', 'a b', '', '/ceos', 'ceos/', 'ceos@sha256:abc', 'ceos:-tag', 'ceos:a:b']) {
      assertProblemAt(withArtifact({ image }), '/artifacts/a/image');
    }
  });

  test('a path that could escape the output folder or is not portable is rejected at /artifacts/<name>/path', () => {
    for (const p of ['..', '../x', 'a/../b', 'a/..', '/abs', '/', 'a\\b', '..\\x', 'a\u0000b', 'dir/', '']) {
      assertProblemAt(withArtifact({ path: p }), '/artifacts/a/path');
    }
  });

  test(
    'a path that names the output folder itself ("." or "a/.") is rejected',
    () => {
      for (const p of ['.', 'a/.']) assertProblemAt(withArtifact({ path: p }), '/artifacts/a/path');
    },
  );

  test('ordinary relative paths are accepted, including names with dots', () => {
    for (const p of ['a.bin', 'images/cEOS-lab-4.32.1F.tar.xz', 'x..y', '.hidden', 'a/b/c.d']) assertValid(withArtifact({ path: p }));
  });

  test('an output folder outside the manifest folder is rejected at /output', () => {
    for (const output of ['../x', '..', '/abs', 'a/../../b', 'out/', 'a\\b', '']) {
      assertProblemAt({ version: 1, output, artifacts: {} }, '/output');
    }
    assertValid({ version: 1, output: 'out/lab', artifacts: {} });
  });
});

describe('parseManifest: checks across entries', () => {
  test('two artifacts with the same explicit output path are a problem at the second one', () => {
    const doc = {
      version: 1,
      artifacts: {
        a: { url: 'https://x.example/1.bin', path: 'same.bin' },
        b: { url: 'https://x.example/2.bin', path: 'same.bin' },
      },
    };
    assertProblemAt(doc, '/artifacts/b/path');
  });

  test('an explicit path that equals another artifact\'s URL-derived path is a problem', () => {
    const doc = {
      version: 1,
      artifacts: {
        a: { url: 'https://x.example/dl/cEOS.tar.xz' },
        b: { url: 'https://y.example/other.bin', path: 'cEOS.tar.xz' },
      },
    };
    assertProblemAt(doc, '/artifacts/b/path');
  });

  test(
    'two spellings of the same output file ("./x.bin" and "x.bin") are a problem',
    () => {
      const doc = {
        version: 1,
        artifacts: {
          a: { url: 'https://x.example/1.bin', path: 'x.bin' },
          b: { url: 'https://x.example/2.bin', path: './x.bin' },
        },
      };
      assertProblemAt(doc, '/artifacts/b/path');
    },
  );

  test('"link": "hardlink" with "executable": true is a problem at /link (a hard link would chmod the shared blob)', () => {
    assertProblemAt(withArtifact({ link: 'hardlink', executable: true }), '/artifacts/a/link');
    assertValid(withArtifact({ link: 'hardlink', executable: false }));
    assertValid(withArtifact({ link: 'copy', executable: true }));
  });

  test('a URL without a file name and no "path" is a problem; giving "path" fixes it', () => {
    for (const url of ['https://x.example/', 'https://x.example', 'https://x.example/dir/']) {
      assertProblemAt(withArtifact({ url }), '/artifacts/a/url');
      assertValid(withArtifact({ url, path: 'file.bin' }));
    }
  });

  test('every schema problem of a file is reported at once, each with its own pointer and position', () => {
    const doc = {
      version: 2,
      artifacts: {
        a: { url: 'ftp://x', digets: 'x', size: -1, link: 'sym', image: 'Arista/CEOS', path: '../x' },
        b: { url: 'https://x.example/b.bin', checksums: { md5: 'x' } },
      },
    };
    const list = problems(doc);
    const pointers = list.map((p) => p.pointer).sort();
    assert.deepEqual(pointers, [
      '/artifacts/a/digets',
      '/artifacts/a/image',
      '/artifacts/a/link',
      '/artifacts/a/path',
      '/artifacts/a/size',
      '/artifacts/a/url',
      '/artifacts/b/checksums/md5',
      '/version',
    ]);
    for (const p of list) assert.ok(p.line && p.column, `no position for ${p.pointer}`);
    assert.equal(new Set(list.map((p) => `${p.line}:${p.column}`)).size, list.length, 'each problem points at its own value');
  });

  test('every cross-entry problem is reported at once', () => {
    const doc = {
      version: 1,
      artifacts: {
        a: { url: 'https://x.example/a', link: 'hardlink', executable: true },
        b: { url: 'https://x.example/' },
        c: { url: 'https://x.example/c', link: 'hardlink', executable: true },
        d: { url: 'https://x.example/other/a' },
      },
    };
    // d's output path comes from its URL (it has no "path"): the pointer names the URL.
    assert.deepEqual(problems(doc).map((p) => p.pointer).sort(), ['/artifacts/a/link', '/artifacts/b/url', '/artifacts/c/link', '/artifacts/d/url']);
  });
});

describe('parseManifest: the error a person reads', () => {
  test('names the file and the JSON pointer, gives a hint, and carries file and problems in details', () => {
    const err = manifestError(withArtifact({ url: 'ftp://x.example/a.bin' }), 'lab/hoard.json');
    assert.ok(err.message.includes(path.join('lab', 'hoard.json')), err.message);
    assert.ok(err.message.includes('/artifacts/a/url'), err.message);
    assert.ok(err.hint, 'a hint with the next step');
    assert.equal(err.details.file, 'lab/hoard.json');
    assert.equal((err.details.problems as ManifestProblem[]).length, 1);
  });

  test('a JSON syntax error is E_MANIFEST with the line and column of the mistake', () => {
    const list = problems('{\n  "version": 1,\n  "artifacts": {},\n}\n');
    assert.equal(list.length, 1);
    assert.deepEqual([list[0]!.line, list[0]!.column], [4, 1]);
  });

  test('a duplicate artifact name is E_MANIFEST at that name, not "last one wins"', () => {
    const src = '{\n  "version": 1,\n  "artifacts": {\n    "a": {"url": "https://x.example/1"},\n    "a": {"url": "https://x.example/2"}\n  }\n}\n';
    const err = manifestError(src);
    const list = err.details.problems as ManifestProblem[];
    assert.deepEqual(list.map((p) => [p.pointer, p.line, p.column]), [['/artifacts/a', 5, 5]]);
    assert.ok(err.message.includes('/artifacts/a'), err.message);
  });
});

describe('checkManifest', () => {
  test('validates already-parsed values and uses the positions it is given', () => {
    const src = text(withArtifact({ size: -5 }));
    const { value, positions } = parseJson(src);
    try {
      checkManifest('hoard.json', value, positions);
      assert.fail('expected E_MANIFEST');
    } catch (err) {
      assert.ok(err instanceof HoardError);
      const [p] = err.details.problems as ManifestProblem[];
      assert.equal(p?.pointer, '/artifacts/a/size');
      assert.deepEqual([p?.line, p?.column], [positions.get('/artifacts/a/size')?.line, positions.get('/artifacts/a/size')?.column]);
    }
  });

  test('without positions, problems still carry pointers', () => {
    assert.throws(
      () => checkManifest('hoard.json', withArtifact({ link: 'nope' })),
      (err: unknown) => err instanceof HoardError && (err.details.problems as ManifestProblem[])[0]?.pointer === '/artifacts/a/link',
    );
    assert.deepEqual(checkManifest('hoard.json', REALISTIC), REALISTIC);
  });
});

describe('loadManifest', () => {
  test('reads, validates and returns the absolute file, its folder, the doc and the exact text', async (t) => {
    const dir = tmpDir(t);
    const file = path.join(dir, 'hoard.json');
    const src = text(REALISTIC);
    await fs.writeFile(file, src);
    const m = await loadManifest(file);
    assert.equal(m.file, file);
    assert.equal(m.dir, dir);
    assert.equal(m.text, src);
    assert.deepEqual(m.doc, REALISTIC);
  });

  test('a missing file is E_MANIFEST with a hint to run `hoard init`', async (t) => {
    const file = path.join(tmpDir(t), 'hoard.json');
    await assert.rejects(loadManifest(file), (err: unknown) => {
      assert.ok(err instanceof HoardError);
      assert.equal(err.code, 'E_MANIFEST');
      assert.match(err.hint ?? '', /hoard init/);
      assert.equal(err.details.file, file);
      return true;
    });
  });

  test('a folder where the manifest should be is E_MANIFEST, not a raw EISDIR', async (t) => {
    const dir = tmpDir(t);
    await fs.mkdir(path.join(dir, 'hoard.json'));
    await assert.rejects(loadManifest(path.join(dir, 'hoard.json')), (err: unknown) => err instanceof HoardError && err.code === 'E_MANIFEST');
  });

  test('an invalid file is E_MANIFEST naming that file, and the file is left as it was', async (t) => {
    const dir = tmpDir(t);
    const file = path.join(dir, 'broken.json');
    const src = text(withArtifact({ digets: 'x' }));
    await fs.writeFile(file, src);
    await assert.rejects(loadManifest(file), (err: unknown) => {
      assert.ok(err instanceof HoardError);
      assert.equal(err.code, 'E_MANIFEST');
      assert.equal(err.details.file, file);
      assert.ok(err.message.includes('broken.json'), err.message);
      assert.ok(err.message.includes('/artifacts/a/digets'), err.message);
      return true;
    });
    assert.equal(await fs.readFile(file, 'utf8'), src);
  });
});

describe('resolveArtifacts', () => {
  test('applies defaults: path from the URL\'s last segment, percent-decoded; link auto; executable false; empty maps', () => {
    const doc = assertValid({
      version: 1,
      artifacts: { iso: { url: 'https://x.example/dl/My%20Image%2B1.iso?token=abc#frag' } },
    });
    assert.deepEqual(resolveArtifacts(doc), [
      {
        name: 'iso',
        url: 'https://x.example/dl/My%20Image%2B1.iso?token=abc#frag',
        mirrors: [],
        path: 'My Image+1.iso',
        checksums: {},
        headers: {},
        link: 'auto',
        executable: false,
      },
    ]);
  });

  test('keeps every explicit value', () => {
    const [a] = resolveArtifacts(REALISTIC as ManifestDoc);
    const entry = REALISTIC.artifacts['ceos-lab'] as ArtifactEntry;
    assert.deepEqual(a, { name: 'ceos-lab', ...entry });
  });

  test('returns artifacts sorted by name whatever the file order', () => {
    const doc = assertValid({
      version: 1,
      artifacts: {
        zeta: { url: 'https://x.example/z' },
        alpha: { url: 'https://x.example/a' },
        mid: { url: 'https://x.example/m' },
      },
    });
    assert.deepEqual(resolveArtifacts(doc).map((a) => a.name), ['alpha', 'mid', 'zeta']);
  });
});

describe('fileNameFromUrl', () => {
  const cases: Array<[string, string | null]> = [
    ['https://downloads.example.com/cEOS-lab-4.32.1F.tar.xz', 'cEOS-lab-4.32.1F.tar.xz'],
    ['https://x.example/a/b/c.bin?x=1#y', 'c.bin'],
    ['https://x.example/My%20File.iso', 'My File.iso'],
    ['https://x.example/', null],
    ['https://x.example', null],
    ['https://x.example/dir/', null],
    ['https://x.example/a%2Fb', null],
    ['https://x.example/a%5Cb', null],
    ['https://x.example/a%00b', null],
    ['https://x.example/%2e%2e', null],
    ['https://x.example/a%ZZ', null],
    ['not a url', null],
  ];
  for (const [url, expected] of cases) {
    test(`${url} → ${String(expected)}`, () => {
      assert.equal(fileNameFromUrl(url), expected);
    });
  }
});
