import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { ManifestDoc } from '../../src/manifest/types.ts';
import { serializeManifest, writeManifest } from '../../src/manifest/write.ts';
import { tmpDir } from '../helpers.ts';

const { loadManifest, parseManifest } = await import('../../src/manifest/load.ts');

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}` as const;

const FULL_ENTRY_REVERSED = {
  executable: false,
  link: 'copy',
  headers: { 'X-Token': '${TOKEN}', Accept: '*/*' },
  image: 'arista/ceos:4.32.1F',
  checksums: { md5: 'd'.repeat(32), sha1: 'c'.repeat(40), sha256: '1'.repeat(64), sha512: 'b'.repeat(128) },
  size: 512000000,
  digest: D1,
  path: 'images/cEOS-lab-4.32.1F.tar.xz',
  mirrors: ['https://mirror.example.org/cEOS-lab-4.32.1F.tar.xz'],
  url: 'https://downloads.example.com/cEOS-lab-4.32.1F.tar.xz',
};

const DOC = {
  $schema: './schemas/manifest.schema.json',
  version: 1,
  output: 'artifacts',
  artifacts: {
    'ceos-lab': { ...FULL_ENTRY_REVERSED },
    'alpine-iso': { url: 'https://dl.example.com/alpine-3.20.iso', digest: D2, size: 3 },
  },
} as unknown as ManifestDoc;

describe('serializeManifest: one canonical text', () => {
  test('writes top-level and per-artifact keys in the fixed order, whatever the input order', () => {
    const reversed = { artifacts: DOC.artifacts, output: 'artifacts', version: 1, $schema: './s.json' } as unknown as ManifestDoc;
    const out = JSON.parse(serializeManifest(reversed)) as { artifacts: Record<string, Record<string, unknown>> };
    assert.deepEqual(Object.keys(out), ['$schema', 'version', 'output', 'artifacts']);
    assert.deepEqual(Object.keys(out.artifacts['ceos-lab']!), [
      'url', 'mirrors', 'path', 'digest', 'size', 'checksums', 'image', 'headers', 'link', 'executable',
    ]);
    assert.deepEqual(Object.keys(out.artifacts['ceos-lab']!.checksums as object), ['sha512', 'sha256', 'sha1', 'md5']);
  });

  test('sorts artifacts by name whatever the insertion order', () => {
    const doc = {
      version: 1,
      artifacts: { zeta: { url: 'https://x.example/z' }, alpha: { url: 'https://x.example/a' }, Mid: { url: 'https://x.example/m' }, beta: { url: 'https://x.example/b' } },
    } as ManifestDoc;
    const names = [...serializeManifest(doc).matchAll(/^ {4}"([^"]+)": \{$/gm)].map((m) => m[1]);
    assert.deepEqual(names, ['Mid', 'alpha', 'beta', 'zeta']);
  });

  test(
    'sorts artifact names that look like numbers by name too',
    () => {
      const doc = {
        version: 1,
        artifacts: { a: { url: 'https://x.example/a' }, 9: { url: 'https://x.example/9' }, 10: { url: 'https://x.example/10' } },
      } as unknown as ManifestDoc;
      const names = [...serializeManifest(doc).matchAll(/^ {4}"([^"]+)": \{$/gm)].map((m) => m[1]);
      assert.deepEqual(names, ['10', '9', 'a']);
    },
  );

  test('uses 2-space indent, omits absent fields (no nulls) and ends with exactly one newline', () => {
    const doc = {
      artifacts: {
        b: { executable: true, url: 'https://x.example/b.bin' },
        a: { size: 3, url: 'https://x.example/a.bin', digest: D2, mirrors: ['https://m.example/a.bin'] },
      },
      version: 1,
    } as unknown as ManifestDoc;
    const expected = [
      '{',
      '  "version": 1,',
      '  "artifacts": {',
      '    "a": {',
      '      "url": "https://x.example/a.bin",',
      '      "mirrors": [',
      '        "https://m.example/a.bin"',
      '      ],',
      `      "digest": "${D2}",`,
      '      "size": 3',
      '    },',
      '    "b": {',
      '      "url": "https://x.example/b.bin",',
      '      "executable": true',
      '    }',
      '  }',
      '}',
      '',
    ].join('\n');
    assert.equal(serializeManifest(doc), expected);
  });

  test('an empty manifest is still canonical', () => {
    assert.equal(serializeManifest({ version: 1, artifacts: {} }), '{\n  "version": 1,\n  "artifacts": {}\n}\n');
  });

  test('does not change the document it is given', () => {
    const doc = structuredClone(DOC);
    serializeManifest(doc);
    assert.deepEqual(doc, DOC);
  });
});

describe('serializeManifest: round trip', () => {
  test('parse → serialize of a canonical file gives the same bytes', () => {
    const canonical = serializeManifest(DOC);
    assert.equal(serializeManifest(parseManifest('hoard.json', canonical)), canonical);
  });

  test('a hand-edited file (any key order, 4-space indent, CRLF, no final newline) becomes canonical in one step and stays there', () => {
    const messy = JSON.stringify(
      { artifacts: { 'ceos-lab': FULL_ENTRY_REVERSED, 'alpine-iso': { size: 3, digest: D2, url: 'https://dl.example.com/alpine-3.20.iso' } }, output: 'artifacts', version: 1, $schema: './schemas/manifest.schema.json' },
      null,
      4,
    ).replace(/\n/g, '\r\n');
    const once = serializeManifest(parseManifest('hoard.json', messy));
    const twice = serializeManifest(parseManifest('hoard.json', once));
    assert.equal(twice, once);
    assert.equal(once, serializeManifest(DOC));
    assert.deepEqual(parseManifest('hoard.json', once), parseManifest('hoard.json', messy));
  });
});

async function writeAndLoad(t: TestContext, text: string) {
  const dir = tmpDir(t);
  const file = path.join(dir, 'hoard.json');
  await fs.writeFile(file, text);
  return { dir, file, manifest: await loadManifest(file) };
}

const OLD = new Date('2001-02-03T04:05:06Z');

describe('writeManifest', () => {
  test('leaves the file alone (same inode, same mtime) when the bytes would not change', async (t) => {
    const { file, manifest } = await writeAndLoad(t, serializeManifest(DOC));
    await fs.utimes(file, OLD, OLD);
    const before = await fs.stat(file, { bigint: true });
    assert.equal(await writeManifest(manifest, structuredClone(manifest.doc)), false);
    const after = await fs.stat(file, { bigint: true });
    assert.equal(after.ino, before.ino);
    assert.equal(after.mtimeNs, before.mtimeNs);
  });

  test('replaces the file atomically when it changes: new content, new inode, no temp file left beside it', async (t) => {
    const { dir, file, manifest } = await writeAndLoad(t, serializeManifest(DOC));
    const before = await fs.stat(file, { bigint: true });
    const next = structuredClone(manifest.doc);
    next.artifacts.zz = { url: 'https://x.example/zz.bin' };
    assert.equal(await writeManifest(manifest, next), true);
    const text = await fs.readFile(file, 'utf8');
    assert.equal(text, serializeManifest(next));
    assert.notEqual((await fs.stat(file, { bigint: true })).ino, before.ino, 'written to a temp file and renamed over, not rewritten in place');
    assert.deepEqual(await fs.readdir(dir), ['hoard.json']);
    assert.equal(manifest.text, text, 'the manifest remembers what is on disk now');
    assert.equal(await writeManifest(manifest, structuredClone(next)), false, 'a second identical write is a no-op');
  });

  test('rewrites a hand-edited (non-canonical) file in canonical form', async (t) => {
    const { file, manifest } = await writeAndLoad(t, JSON.stringify(DOC, null, 4));
    assert.equal(await writeManifest(manifest, manifest.doc), true);
    assert.equal(await fs.readFile(file, 'utf8'), serializeManifest(DOC));
  });

  test(
    'keeps the permissions of the file it replaces',
    async (t) => {
      const { file, manifest } = await writeAndLoad(t, serializeManifest(DOC));
      await fs.chmod(file, 0o600);
      const next = structuredClone(manifest.doc);
      next.artifacts.zz = { url: 'https://x.example/zz.bin' };
      await writeManifest(manifest, next);
      assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    },
  );

  test(
    'writes through a symlinked hoard.json instead of replacing the link',
    async (t) => {
      const dir = tmpDir(t);
      const real = path.join(dir, 'shared.json');
      const link = path.join(dir, 'hoard.json');
      await fs.writeFile(real, serializeManifest(DOC));
      await fs.symlink('shared.json', link);
      const manifest = await loadManifest(link);
      const next = structuredClone(manifest.doc);
      next.artifacts.zz = { url: 'https://x.example/zz.bin' };
      await writeManifest(manifest, next);
      assert.ok((await fs.lstat(link)).isSymbolicLink(), 'hoard.json is still a symlink');
      assert.equal(await fs.readFile(real, 'utf8'), serializeManifest(next));
    },
  );
});
