// `hoard merge-driver %O %A %B`: git merges hoard.json by artifact name. Real git, real merges,
// the built CLI as the driver.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { ArtifactEntry, ManifestDoc } from '../../src/manifest/types.ts';
import { serializeManifest } from '../../src/manifest/write.ts';
import { CLI, cliEnv, hoard, tmpDir } from '../helpers.ts';

/** The CLI tests' isolated environment (git passes it on to the driver), without the developer's GIT_* variables. */
const GIT_ENV = cliEnv({
  ...Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('GIT_')).map((k) => [k, undefined])),
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.invalid',
});

function git(dir: string, ...args: string[]) {
  const r = spawnSync('git', args, { cwd: dir, env: GIT_ENV, encoding: 'utf8' });
  if (r.error) throw r.error;
  return r;
}
function gitOk(dir: string, ...args: string[]): string {
  const r = git(dir, ...args);
  assert.equal(r.status, 0, `git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function entry(name: string, n: number, extra: Partial<ArtifactEntry> = {}): ArtifactEntry {
  return { url: `https://downloads.example.com/${name}.tar.xz`, digest: `sha256:${n.toString(16).padStart(2, '0').repeat(32)}`, size: 1000 + n, ...extra };
}

async function write(dir: string, doc: ManifestDoc) {
  await fs.writeFile(path.join(dir, 'hoard.json'), serializeManifest(doc));
}

/** A repository on main with hoard.json {a, c}; with the driver configured as `hoard init` says (but running the built CLI). */
async function repo(t: TestContext, driver: boolean) {
  const dir = tmpDir(t);
  gitOk(dir, 'init', '-q', '-b', 'main');
  if (driver) {
    gitOk(dir, 'config', 'merge.hoard.name', 'hoard.json: three-way merge by artifact name');
    gitOk(dir, 'config', 'merge.hoard.driver', `"${process.execPath}" "${CLI}" merge-driver %O %A %B %P`);
    await fs.writeFile(path.join(dir, '.gitattributes'), 'hoard.json merge=hoard\n');
  }
  const base: ManifestDoc = { version: 1, output: 'artifacts', artifacts: { a: entry('a', 1), c: entry('c', 3) } };
  await write(dir, base);
  gitOk(dir, 'add', '-A');
  gitOk(dir, 'commit', '-q', '-m', 'base');
  return { dir, base };
}

async function branch(dir: string, name: string, from: string, doc: ManifestDoc) {
  gitOk(dir, 'checkout', '-q', '-b', name, from);
  await write(dir, doc);
  gitOk(dir, 'commit', '-q', '-am', name);
}

describe('hoard merge-driver with real git', () => {
  test('two branches that add adjacent artifacts: a plain text merge conflicts, the driver merges them cleanly', async (t) => {
    for (const driver of [false, true]) {
      const { dir, base } = await repo(t, driver);
      await branch(dir, 'one', 'main', { ...base, artifacts: { ...base.artifacts, b1: entry('b1', 11) } });
      await branch(dir, 'two', 'main', { ...base, artifacts: { ...base.artifacts, b2: entry('b2', 12) } });
      const m = git(dir, 'merge', '-q', '--no-edit', 'one');
      const text = await fs.readFile(path.join(dir, 'hoard.json'), 'utf8');
      if (!driver) {
        assert.notEqual(m.status, 0, 'without the driver, git conflicts on adjacent additions');
        assert.match(text, /<<<<<<< /);
        continue;
      }
      assert.equal(m.status, 0, m.stderr + m.stdout);
      assert.equal(text, serializeManifest({ ...base, artifacts: { ...base.artifacts, b1: entry('b1', 11), b2: entry('b2', 12) } }));
      assert.equal(gitOk(dir, 'status', '--porcelain'), '');
    }
  });

  test('both branches change one entry differently: conflict markers around that entry only; the rest merged (exit 1 to git)', async (t) => {
    const { dir, base } = await repo(t, true);
    await branch(dir, 'one', 'main', { ...base, artifacts: { ...base.artifacts, a: entry('a', 21, { url: 'https://one.example/a.tar.xz' }), z: entry('z', 26) } });
    await branch(dir, 'two', 'main', { ...base, artifacts: { ...base.artifacts, a: entry('a', 22, { url: 'https://two.example/a.tar.xz' }), b: entry('b', 2) } });
    const m = git(dir, 'merge', '-q', '--no-edit', 'one');
    assert.notEqual(m.status, 0);
    const text = await fs.readFile(path.join(dir, 'hoard.json'), 'utf8');
    const blocks = text.match(/<<<<<<< ours\n[\s\S]*?\n=======\n[\s\S]*?\n>>>>>>> theirs/g) ?? [];
    assert.equal(blocks.length, 1, text);
    assert.match(blocks[0]!, /two\.example[\s\S]*=======[\s\S]*one\.example/, 'ours (two) first, theirs (one) after');
    assert.doesNotMatch(blocks[0]!, /"b"|"c"|"z"/, 'no other entry is inside the markers');
    // Everything else, merged: b (ours), c (both), z (theirs).
    const outside = text.replace(blocks[0]!, '');
    for (const n of ['b', 'c', 'z']) assert.match(outside, new RegExp(`"${n}": \\{`));
    assert.match(git(dir, 'status', '--porcelain').stdout, /^UU hoard\.json/m);
  });
});

describe('hoard merge-driver rules (files given directly)', () => {
  async function merge(t: TestContext, base: ManifestDoc | '', ours: ManifestDoc, theirs: ManifestDoc) {
    const dir = tmpDir(t);
    const f = (n: string) => path.join(dir, n);
    await fs.writeFile(f('O'), base === '' ? '' : serializeManifest(base));
    await fs.writeFile(f('A'), serializeManifest(ours));
    await fs.writeFile(f('B'), serializeManifest(theirs));
    const r = await hoard(['merge-driver', f('O'), f('A'), f('B')], { cwd: dir });
    return { ...r, text: await fs.readFile(f('A'), 'utf8') };
  }
  const base: ManifestDoc = { version: 1, artifacts: { a: entry('a', 1), b: entry('b', 2), c: entry('c', 3) } };

  test('one side\'s change wins over an untouched base; a deletion of an untouched entry deletes; the same change on both sides is fine', async (t) => {
    const ours: ManifestDoc = { version: 1, output: 'out', artifacts: { a: entry('a', 9), b: entry('b', 2), c: entry('c', 3), d: entry('d', 4) } };
    const theirs: ManifestDoc = { version: 1, output: 'out', artifacts: { a: entry('a', 1), c: entry('c', 3), d: entry('d', 4) } };
    const r = await merge(t, base, ours, theirs);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, serializeManifest({ version: 1, output: 'out', artifacts: { a: entry('a', 9), c: entry('c', 3), d: entry('d', 4) } }));
  });

  test('deleted on one side, changed on the other: a conflict (exit 1)', async (t) => {
    const r = await merge(t, base, { version: 1, artifacts: { a: entry('a', 1), c: entry('c', 3) } }, { version: 1, artifacts: { ...base.artifacts, b: entry('b', 7) } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /artifact "b" changed differently on both sides/);
    assert.match(r.text, /<<<<<<< ours\n=======\n {4}"b": \{[\s\S]*?\n>>>>>>> theirs/);
  });

  test('no common ancestor (both added hoard.json): a union', async (t) => {
    const r = await merge(t, '', { version: 1, artifacts: { a: entry('a', 1) } }, { version: 1, artifacts: { b: entry('b', 2) } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(Object.keys(JSON.parse(r.text).artifacts), ['a', 'b']);
  });

  test('a clean merge that is not a valid manifest (both sides took one path): exit 1, saying why', async (t) => {
    const r = await merge(t, { version: 1, artifacts: {} }, { version: 1, artifacts: { a: entry('a', 1, { path: 'x.iso' }) } }, { version: 1, artifacts: { b: entry('b', 2, { path: 'x.iso' }) } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not a valid manifest[\s\S]*same output path/);
  });

  test('--help shows the git config line', async (t) => {
    const r = await hoard(['merge-driver', '--help'], { cwd: tmpDir(t) });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /git config merge\.hoard\.driver "hoard merge-driver %O %A %B"/);
  });
});

test('hoard init writes .gitattributes (when there is none) and prints the two git config lines', async (t) => {
  const dir = tmpDir(t);
  const r = await hoard(['init'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await fs.readFile(path.join(dir, '.gitattributes'), 'utf8'), 'hoard.json merge=hoard\n');
  assert.match(r.stdout + r.stderr, /git config merge\.hoard\.name "/);
  assert.match(r.stdout + r.stderr, /git config merge\.hoard\.driver "hoard merge-driver %O %A %B"/);

  const other = tmpDir(t);
  await fs.writeFile(path.join(other, '.gitattributes'), '*.bin binary\n');
  const r2 = await hoard(['init'], { cwd: other });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(await fs.readFile(path.join(other, '.gitattributes'), 'utf8'), '*.bin binary\n', 'an existing .gitattributes is not changed');
  assert.match(r2.stdout + r2.stderr, /add "hoard\.json merge=hoard" to \.gitattributes/);
});
