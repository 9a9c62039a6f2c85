// `npm run demo` (scripts/demo.mjs) as a newcomer runs it: the real script, the real CLI, podman.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { podmanSkip, ROOT } from '../helpers.ts';

function demo(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'demo.mjs')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

test('the demo imports its cEOS root filesystem into podman, finds it present on the next sync, and removes it', { skip: podmanSkip }, async () => {
  const r = await demo({});
  assert.equal(r.code, 0, r.out);
  const ref = /imported as (localhost\/hoard-demo\/ceos:\d+)/.exec(r.out)?.[1];
  assert.ok(ref, r.out);
  assert.match(r.out, /ceos-lab {2}cached, up to date, image present/);
  assert.match(r.out, /removing the demo image/);
  const left = execFileSync('podman', ['images', '--format', '{{.Repository}}:{{.Tag}}'], { encoding: 'utf8' });
  assert.ok(!left.includes(ref), `${ref} is still in podman`);
});

test('without an engine the demo says it skipped the image part, and still passes', async () => {
  const r = await demo({ HOARD_DEMO_ENGINE: 'none' });
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /skipping the container image part/);
  assert.doesNotMatch(r.out, /imported as/);
});
