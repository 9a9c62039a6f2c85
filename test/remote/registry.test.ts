// The team cache against a real CNCF Distribution registry (docker-registry), with skopeo as an
// independent client. Origins are loopback HTTP servers that count their requests.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { hoard, jsonLines, randomData, sha256, startServer, tmpDir, type RunResult } from '../helpers.ts';
import { hexOf, registrySkip, startRecorder, startRegistry } from '../fixtures/registry.ts';

const exec = promisify(execFile);

/** A project with one or more artifacts served by a counting origin, and its own store. */
async function setup(t: import('node:test').TestContext, remote: string, files: Record<string, Buffer>, extra: Record<string, unknown> = {}) {
  const origin = await startServer(t, Object.fromEntries(Object.entries(files).map(([n, b]) => [`/${n}`, { body: b, ranges: true }])));
  const base = tmpDir(t);
  const dir = path.join(base, 'project');
  await fs.mkdir(dir);
  const artifacts: Record<string, unknown> = {};
  for (const [n, b] of Object.entries(files)) artifacts[n.replace(/\.bin$/, '')] = { url: origin.url(`/${n}`), digest: `sha256:${sha256(b)}`, size: b.length };
  await fs.writeFile(path.join(dir, 'hoard.json'), `${JSON.stringify({ version: 1, remote, artifacts, ...extra }, null, 2)}\n`);
  const config = path.join(base, 'config');
  const run = (store: string, args: string[], env: Record<string, string | undefined> = {}): Promise<RunResult> =>
    hoard(args, { cwd: dir, store: path.join(base, store), env: { XDG_CONFIG_HOME: config, HOME: base, DOCKER_CONFIG: path.join(base, 'docker'), XDG_RUNTIME_DIR: undefined, REGISTRY_AUTH_FILE: undefined, ...env } });
  return { origin, dir, base, config, run };
}

const ok = (r: RunResult) => assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);

test('push, then a fresh store syncs from the registry with no request to the origin; a second push uploads nothing', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  const a = randomData(300_000);
  const b = randomData(1000);
  const p = await setup(t, reg.remote('lab/hoard-cache'), { 'a.bin': a, 'b.bin': b });
  ok(await p.run('store1', ['sync']));
  assert.equal(p.origin.total(), 2);

  const pushed = await p.run('store1', ['push', '--json']);
  ok(pushed);
  const summary = jsonLines(pushed.stdout).find((e) => e.type === 'push-summary')!;
  assert.equal(summary.pushed, 2);
  assert.equal(summary.bytesPushed, a.length + b.length);

  // The other machine: an empty store, an empty output folder.
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const before = p.origin.total();
  const r = await p.run('store2', ['sync']);
  ok(r);
  assert.equal(p.origin.total(), before, 'no request reached the origin');
  assert.match(r.stdout, /a {2}pulled from cache 293 KiB/);
  assert.match(r.stdout, /pulled from cache/);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'a.bin')), a);

  const again = await p.run('store1', ['push', '--json']);
  ok(again);
  const s2 = jsonLines(again.stdout).find((e) => e.type === 'push-summary')!;
  assert.equal(s2.pushed, 0);
  assert.equal(s2.present, 2);
  assert.equal(s2.bytesPushed, 0);

  // skopeo, an independent client, sees the artifact manifest hoard wrote ...
  const hex = sha256(a);
  const { stdout } = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/lab/hoard-cache:sha256-${hex}`]);
  const m = JSON.parse(stdout);
  assert.equal(m.artifactType, 'application/vnd.hoard.artifact.v1');
  assert.equal(m.config.mediaType, 'application/vnd.oci.empty.v1+json');
  assert.equal(m.layers[0].digest, `sha256:${hex}`);
  assert.equal(m.layers[0].annotations['org.opencontainers.image.title'], 'a.bin');
  // ... and copies out a byte-identical blob.
  const layout = path.join(p.base, 'layout');
  await exec('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/lab/hoard-cache:sha256-${hex}`, `oci:${layout}:x`]);
  assert.deepEqual(await fs.readFile(path.join(layout, 'blobs', 'sha256', hex)), a);

  // Registry garbage collection keeps hoard's blobs (they are referenced by tagged manifests).
  const gc = await exec('docker-registry', ['garbage-collect', '--dry-run', reg.config]);
  assert.doesNotMatch(gc.stdout + gc.stderr, new RegExp(`eligible for deletion: sha256:${hex}`));
  assert.doesNotMatch(gc.stdout + gc.stderr, new RegExp(`eligible for deletion: sha256:${sha256(b)}`));
});
