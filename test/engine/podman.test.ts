// The engine adapter against the real podman (Debian's package; .ci/run installs it; it runs
// as root without a daemon): import, load of `podman save` archives in both formats, tag,
// inspect. Every image has a unique name and is removed after its test.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
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
import { counting, rootfs } from '../fixtures/rootfs.ts';
import { sha256, tmpDir } from '../helpers.ts';

const HAVE_PODMAN = spawnSync('podman', ['--version'], { stdio: 'ignore' }).status === 0;
// On CI podman must be there (.ci/run installs it): the tests run and fail without it.
const skip = !HAVE_PODMAN && !process.env.CI ? 'podman is not installed (apt-get install podman)' : false;

function podman(...args: string[]): string {
  return execFileSync('podman', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** A unique image name, removed (with every tag of its image) after the test. */
function imageName(t: TestContext, tag = 'v1'): string {
  const name = `localhost/hoard-test-${randomBytes(5).toString('hex')}`;
  t.after(() => {
    spawnSync('podman', ['rmi', '-f', `${name}:${tag}`], { stdio: 'ignore' });
  });
  return `${name}:${tag}`;
}

/** `podman image inspect` as podman itself reports it: `sha256:<id>`. */
const podmanId = (ref: string) => `sha256:${podman('image', 'inspect', '--format', '{{.Id}}', ref)}`;

test('importRootfs: a .tar.xz root filesystem becomes the image, labelled with the artifact digest', { skip }, async (t) => {
  const { xz, digest } = await rootfs(t);
  const ref = imageName(t, '4.32.1F');
  const engine = createEngine('podman', execaRunner);
  const info = await engine.importRootfs(xz, ref, digest);
  assert.equal(info.ref, ref);
  assert.equal(info.labels[DIGEST_LABEL], digest);
  assert.equal(info.id, podmanId(ref));
  assert.match(info.id, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(JSON.parse(podman('image', 'inspect', '--format', '{{json .RepoTags}}', ref)), [ref]);
  // The same image asked about by its short name (as a manifest writes it): found, same id.
  const short = ref.replace(/^localhost\//, '');
  assert.equal((await engine.inspect([short])).get(short)?.id, info.id);
});

test('inspect: several refs in ONE podman process; missing ones are absent; no tag means :latest', { skip }, async (t) => {
  const { tar, digest } = await rootfs(t);
  const a = imageName(t, 'a');
  const latest = imageName(t, 'latest');
  const plain = createEngine('podman', execaRunner);
  await plain.importRootfs(tar, a, digest);
  await plain.importRootfs(tar, latest, digest);
  const { runner, calls } = counting(execaRunner);
  const engine = createEngine('podman', runner);
  const untagged = latest.replace(/:latest$/, '').replace(/^localhost\//, '');
  const missing = [`localhost/hoard-test-missing-${randomBytes(4).toString('hex')}:1`, `hoard-test-missing-${randomBytes(4).toString('hex')}`];
  const found = await engine.inspect([missing[0]!, a, untagged, missing[1]!]);
  assert.equal(calls.length, 1, `ran ${calls.length} processes: ${JSON.stringify(calls)}`);
  assert.deepEqual([...found.keys()].sort(), [a, untagged].sort());
  assert.equal(found.get(a)?.id, podmanId(a));
  assert.equal(found.get(untagged)?.id, podmanId(latest));
  assert.equal(found.get(a)?.labels[DIGEST_LABEL], digest);
  // Only missing refs: an empty map, not an error.
  assert.equal((await engine.inspect(missing)).size, 0);
});

/** An image made from a rootfs, saved by podman in `format`, then removed, so loading really loads. */
async function savedImage(t: TestContext, format: 'docker-archive' | 'oci-archive'): Promise<{ archive: string; id: string; dir: string }> {
  const { dir, tar, digest } = await rootfs(t);
  const source = imageName(t, 'source');
  const info = await createEngine('podman', execaRunner).importRootfs(tar, source, digest);
  t.after(() => {
    spawnSync('podman', ['rmi', '-f', info.id], { stdio: 'ignore' });
  });
  const archive = path.join(dir, `${format}.tar`);
  podman('save', '--format', format, '-o', archive, source);
  podman('rmi', '-f', source);
  return { archive, id: info.id, dir };
}

for (const format of ['docker-archive', 'oci-archive'] as const) {
  test(`load: a ${format} from podman save (xz-compressed) is loaded and tagged as the requested ref`, { skip }, async (t) => {
    const { archive, id } = await savedImage(t, format);
    execFileSync('xz', ['-k', '-q', archive]);
    const ref = imageName(t, 'lab');
    const { runner, calls } = counting(execaRunner);
    const info = await createEngine('podman', runner).load(`${archive}.xz`, ref);
    assert.deepEqual(calls.map((c) => c.slice(0, 2)), [['podman', 'load'], ['podman', 'tag'], ['podman', 'image']]);
    assert.equal(info.ref, ref);
    assert.equal(info.id, podmanId(ref));
    assert.equal(info.id, id, 'the loaded image is the saved one');
    assert.ok(JSON.parse(podman('image', 'inspect', '--format', '{{json .RepoTags}}', ref)).includes(ref));
  });

  test(`classify: a ${format} from podman save, plain, xz and gzip`, { skip }, async (t) => {
    const { archive } = await savedImage(t, format);
    execFileSync('xz', ['-k', '-q', archive]);
    execFileSync('gzip', ['-k', '-q', archive]);
    for (const file of [archive, `${archive}.xz`, `${archive}.gz`]) assert.equal(await classifyArchive(file), format, file);
  });
}

test('classify: the rootfs these tests import is rootfs', { skip }, async (t) => {
  const { tar, xz } = await rootfs(t);
  assert.equal(await classifyArchive(tar), 'rootfs');
  assert.equal(await classifyArchive(xz), 'rootfs');
});

test('a failed import or load is one E_ENGINE error with podman\'s reason', { skip }, async (t) => {
  const dir = tmpDir(t);
  const notTar = path.join(dir, 'not-a-tar');
  writeFileSync(notTar, 'hello\n');
  const engine = createEngine('podman', execaRunner);
  const ref = imageName(t);
  const digest = `sha256:${sha256(Buffer.from('hello\n'))}` as Digest;
  await assert.rejects(engine.importRootfs(notTar, ref, digest), (err) => {
    assert.ok(err instanceof HoardError);
    assert.equal(err.code, 'E_ENGINE');
    assert.match(err.message, /^podman import failed: .*(EOF|tar)/);
    assert.equal(err.details.engine, 'podman');
    return true;
  });
  await assert.rejects(engine.load(notTar, ref), (err) => {
    assert.ok(err instanceof HoardError);
    assert.match(err.message, /^podman load failed: payload does not match any of the supported image formats$/);
    return true;
  });
  assert.equal((await engine.inspect([ref])).size, 0);
});

test('selectEngine auto: docker not answering (socket nowhere) → the real podman', { skip }, async () => {
  const env = { ...process.env, DOCKER_HOST: 'unix:///nonexistent/hoard-test-docker.sock' };
  const engine = await selectEngine('auto', execaRunner, { env });
  assert.equal(engine.name, 'podman');
  assert.equal((await engine.inspect([`hoard-test-missing-${randomBytes(4).toString('hex')}:1`])).size, 0);
});
