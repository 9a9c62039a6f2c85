// The engine adapter against a real docker daemon (test/fixtures/dockerd.ts: a private dockerd
// on its own socket): the same cases as podman.test.ts — import with the digest label, one
// inspect for many refs, load of `docker save` archives (plain and xz) and tagging, failures
// with docker's own reason, and auto-selection picking the docker that answers.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Digest } from '../../src/core/digest.ts';
import { HoardError } from '../../src/core/errors.ts';
import { createEngine, selectEngine } from '../../src/engine/adapter.ts';
import { classifyArchive } from '../../src/engine/archive.ts';
import { execaRunner } from '../../src/engine/runner.ts';
import { DIGEST_LABEL, type Runner } from '../../src/engine/types.ts';
import { startDockerd } from '../fixtures/dockerd.ts';
import { counting, rootfs } from '../fixtures/rootfs.ts';
import { sha256, tmpDir } from '../helpers.ts';

const daemon = await startDockerd();
const skip = daemon.skip;
const env = { ...process.env, ...daemon.env };

function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** A unique image name, removed after the test. */
function imageName(t: TestContext, tag = 'v1'): string {
  const name = `hoard-test-${randomBytes(5).toString('hex')}`;
  t.after(() => {
    try {
      docker('rmi', '-f', `${name}:${tag}`);
    } catch {}
  });
  return `${name}:${tag}`;
}

const dockerId = (ref: string) => docker('image', 'inspect', '--format', '{{.Id}}', ref);

const engine = (runner: Runner = execaRunner) => createEngine('docker', runner, { env });

test('real docker: importRootfs of a .tar.xz root filesystem makes the image, labelled with the artifact digest', { skip }, async (t) => {
  const { xz, digest } = await rootfs(t);
  const ref = imageName(t, '4.32.1F');
  const info = await engine().importRootfs(xz, ref, digest);
  assert.equal(info.ref, ref);
  assert.equal(info.labels[DIGEST_LABEL], digest);
  assert.equal(info.id, dockerId(ref));
  assert.match(info.id, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(JSON.parse(docker('image', 'inspect', '--format', '{{json .RepoTags}}', ref)), [ref]);
  // Asked for under docker.io's long name: the same image.
  assert.equal((await engine().inspect([`docker.io/library/${ref}`])).get(`docker.io/library/${ref}`)?.id, info.id);
});

test('real docker: inspect asks about several refs in ONE process; missing ones are absent; no tag means :latest', { skip }, async (t) => {
  const { tar, digest } = await rootfs(t);
  const a = imageName(t, 'a');
  const latest = imageName(t, 'latest');
  await engine().importRootfs(tar, a, digest);
  await engine().importRootfs(tar, latest, digest);
  const { runner, calls } = counting(execaRunner);
  const untagged = latest.replace(/:latest$/, '');
  const missing = [`hoard-test-missing-${randomBytes(4).toString('hex')}:1`, `hoard-test-missing-${randomBytes(4).toString('hex')}`];
  const found = await engine(runner).inspect([missing[0]!, a, untagged, missing[1]!]);
  assert.equal(calls.length, 1, `ran ${calls.length} processes: ${JSON.stringify(calls)}`);
  assert.deepEqual([...found.keys()].sort(), [a, untagged].sort());
  assert.equal(found.get(a)?.id, dockerId(a));
  assert.equal(found.get(untagged)?.id, dockerId(latest));
  assert.equal(found.get(a)?.labels[DIGEST_LABEL], digest);
  assert.equal((await engine().inspect(missing)).size, 0);
});

test('real docker: a `docker save` archive (plain and xz) is classified, loaded and tagged as the requested ref', { skip }, async (t) => {
  const { dir, tar, digest } = await rootfs(t);
  const source = imageName(t, 'source');
  const { id } = await engine().importRootfs(tar, source, digest);
  const archive = path.join(dir, 'saved.tar');
  docker('save', '-o', archive, source);
  execFileSync('xz', ['-k', '-q', archive]);
  docker('rmi', '-f', source);
  assert.equal(await classifyArchive(archive), 'docker-archive');
  assert.equal(await classifyArchive(`${archive}.xz`), 'docker-archive');
  for (const file of [archive, `${archive}.xz`]) {
    const ref = imageName(t, file.endsWith('.xz') ? 'from-xz' : 'from-tar');
    const { runner, calls } = counting(execaRunner);
    const info = await engine(runner).load(file, ref);
    assert.deepEqual(calls.map((c) => c.slice(0, 2)), [['docker', 'load'], ['docker', 'tag'], ['docker', 'image']]);
    assert.equal(info.ref, ref);
    assert.equal(info.id, id, 'the loaded image is the saved one');
    assert.equal(dockerId(ref), id);
  }
});

test('real docker: a failed import or load is one E_ENGINE error with docker\'s reason', { skip }, async (t) => {
  const dir = tmpDir(t);
  const notTar = path.join(dir, 'not-a-tar');
  writeFileSync(notTar, 'hello\n'.repeat(200));
  const ref = imageName(t);
  const digest = `sha256:${sha256(Buffer.from('hello\n'.repeat(200)))}` as Digest;
  for (const attempt of [() => engine().importRootfs(notTar, ref, digest), () => engine().load(notTar, ref)]) {
    await assert.rejects(attempt(), (err) => {
      assert.ok(err instanceof HoardError);
      assert.equal(err.code, 'E_ENGINE');
      assert.match(err.message, /^docker (import|load) failed: ./);
      assert.equal(err.details.engine, 'docker');
      return true;
    });
  }
  assert.equal((await engine().inspect([ref])).size, 0);
});

test('real docker: selectEngine auto picks the docker daemon that answers', { skip }, async () => {
  const chosen = await selectEngine('auto', execaRunner, { env });
  assert.equal(chosen.name, 'docker');
});
