// The DESIGN promise: "Two people adding different artifacts produce a diff that git merges
// without conflict where their entries are not adjacent." Checked with the real git.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { ArtifactEntry, ManifestDoc } from '../../src/manifest/types.ts';
import { serializeManifest } from '../../src/manifest/write.ts';
import { tmpDir } from '../helpers.ts';

const { parseManifest } = await import('../../src/manifest/load.ts');

/** A locked entry whose every line is unique to `name`, as `hoard add` would write it. */
function entry(name: string, n: number): ArtifactEntry {
  return {
    url: `https://downloads.example.com/${name}/${name}-1.0.tar.xz`,
    digest: `sha256:${n.toString(16).padStart(2, '0').repeat(32)}`,
    size: 1000 + n,
    image: `vendor/${name}:1.0`,
  };
}

/** Base: artifacts named a, c, e, …, y (every other letter), so a later letter can go between any two. */
function baseDoc(): ManifestDoc {
  const artifacts: Record<string, ArtifactEntry> = {};
  for (let c = 'a'.charCodeAt(0), n = 1; c <= 'y'.charCodeAt(0); c += 2, n++) artifacts[String.fromCharCode(c)] = entry(String.fromCharCode(c), n);
  return { $schema: './schemas/manifest.schema.json', version: 1, output: 'artifacts', artifacts };
}

function withAdded(name: string, n: number): ManifestDoc {
  const doc = baseDoc();
  doc.artifacts[name] = entry(name, n);
  return doc;
}

// Only the repository's own config: no user or system settings (signing, hooks, merge drivers).
const GIT_ENV = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', LC_ALL: 'C' };
const GIT_ID = ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'commit.gpgsign=false', '-c', 'init.defaultBranch=main'];

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', [...GIT_ID, ...args], { cwd, env: GIT_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Parses merged text and returns the artifact names it holds. */
function namesIn(text: string): string[] {
  return Object.keys(parseManifest('hoard.json', text).artifacts).sort();
}

const EXPECTED = [...Object.keys(baseDoc().artifacts), 'd', 'p'].sort();

async function writeTexts(t: TestContext) {
  const dir = tmpDir(t, 'hoard-merge-');
  const files = { base: path.join(dir, 'base.json'), ours: path.join(dir, 'ours.json'), theirs: path.join(dir, 'theirs.json') };
  await fs.writeFile(files.base, serializeManifest(baseDoc()));
  await fs.writeFile(files.ours, serializeManifest(withAdded('d', 100)));
  await fs.writeFile(files.theirs, serializeManifest(withAdded('p', 200)));
  return files;
}

describe('merging canonical manifests with git', () => {
  test('git merge-file merges two additions at non-adjacent positions without a conflict', async (t) => {
    const files = await writeTexts(t);
    const r = spawnSync('git', ['merge-file', '-p', files.ours, files.base, files.theirs], { env: GIT_ENV, encoding: 'utf8' });
    assert.equal(r.status, 0, `git merge-file reported ${r.status} conflict(s):\n${r.stdout}`);
    assert.ok(!r.stdout.includes('<<<<<<<'));
    assert.deepEqual(namesIn(r.stdout), EXPECTED);
    assert.equal(r.stdout, serializeManifest(parseManifest('hoard.json', r.stdout)), 'the merge result is itself canonical');
  });

  test('a real git merge of two branches that each added an artifact succeeds and keeps both', async (t) => {
    const repo = tmpDir(t, 'hoard-merge-repo-');
    const manifest = path.join(repo, 'hoard.json');
    git(repo, 'init', '-q');
    await fs.writeFile(manifest, serializeManifest(baseDoc()));
    git(repo, 'add', 'hoard.json');
    git(repo, 'commit', '-q', '-m', 'base');

    git(repo, 'checkout', '-q', '-b', 'add-d');
    await fs.writeFile(manifest, serializeManifest(withAdded('d', 100)));
    git(repo, 'commit', '-q', '-am', 'add d');

    git(repo, 'checkout', '-q', 'main');
    git(repo, 'checkout', '-q', '-b', 'add-p');
    await fs.writeFile(manifest, serializeManifest(withAdded('p', 200)));
    git(repo, 'commit', '-q', '-am', 'add p');

    const r = spawnSync('git', [...GIT_ID, 'merge', '--no-edit', 'add-d'], { cwd: repo, env: GIT_ENV, encoding: 'utf8' });
    assert.equal(r.status, 0, `git merge failed:\n${r.stdout}${r.stderr}`);
    const merged = await fs.readFile(manifest, 'utf8');
    assert.deepEqual(namesIn(merged), EXPECTED);
    assert.equal(merged, serializeManifest(parseManifest('hoard.json', merged)), 'the merge result is itself canonical');
    assert.equal(git(repo, 'status', '--porcelain'), '', 'nothing left unmerged');
  });
});
