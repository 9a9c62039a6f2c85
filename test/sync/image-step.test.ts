// The image step's decisions about the image a tag pointed at before (src/sync/image-step.ts),
// and the plan for a file no engine can take. The engine here is a fake: what it must say on
// demand (a refusal of `rmi` after the checks passed, an image gone meanwhile) cannot be made
// to happen with a real daemon. The same flows against real podman and dockerd:
// test/cli/images.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Digest } from '../../src/core/digest.ts';
import { HoardError } from '../../src/core/errors.ts';
import { DIGEST_LABEL, type Engine, type ImageInfo } from '../../src/engine/types.ts';
import type { SyncEvent } from '../../src/sync/events.ts';
import { createImageStep } from '../../src/sync/image-step.ts';
import type { ImageObservation } from '../../src/sync/images.ts';
import type { Observed } from '../../src/sync/observe.ts';
import { plan } from '../../src/sync/plan.ts';
import { openSyncState } from '../../src/sync/state.ts';
import { stateOf } from '../../src/sync/states.ts';
import type { Artifact } from '../../src/manifest/types.ts';
import { tmpDir } from '../helpers.ts';

const D1 = `sha256:${'1'.repeat(64)}` as Digest;
const D2 = `sha256:${'2'.repeat(64)}` as Digest;
const OLD = `sha256:${'a'.repeat(64)}`;
const NEW = `sha256:${'b'.repeat(64)}`;
const REF = 'arista/ceos:4.32.1F';

const artifact = { name: 'ceos', url: 'http://127.0.0.1/ceos.tar.xz', path: 'ceos.tar.xz', digest: D2, size: 1, image: REF, mirrors: [], checksums: {}, headers: {}, link: 'auto', executable: false } as unknown as Artifact;
const observed: Observed = { target: '/tmp/out/ceos.tar.xz', blob: 'ok', output: 'ok' };

/** A fake engine: `import` makes NEW; `users` and `remove` answer as told; every call recorded. */
function fakeEngine(opts: { users?: { tags: string[]; containers: string[] } | null; remove?: Error }) {
  const calls: string[] = [];
  const engine: Engine = {
    name: 'podman',
    inspect: async () => new Map(),
    importRootfs: async (_file, ref) => (calls.push(`import ${ref}`), { ref, id: NEW, labels: { [DIGEST_LABEL]: D2 } }),
    load: async () => assert.fail('not an image archive: never loaded'),
    imageUsers: async (id) => (calls.push(`users ${id}`), opts.users === undefined ? { tags: [], containers: [] } : opts.users),
    removeImage: async (id) => {
      calls.push(`rmi ${id}`);
      if (opts.remove) throw opts.remove;
    },
  };
  return { engine, calls };
}

async function step(t: import('node:test').TestContext, old: ImageInfo, engineOpts: Parameters<typeof fakeEngine>[0]) {
  const { engine, calls } = fakeEngine(engineOpts);
  const state = openSyncState(tmpDir(t));
  state.archives.set(D2.slice(7), 'rootfs');
  const emitted: SyncEvent[] = [];
  const ensure = createImageStep({ images: { support: { engine: async () => engine, classify: async () => 'rootfs' }, engine, error: null }, state, emit: (e) => emitted.push(e) });
  const image: ImageObservation = { state: 'stale', info: old };
  const [p] = plan([{ artifact, observed, image }], { force: false });
  return { result: await ensure(p!, D2, '/store/blob'), calls };
}

const hoards = (labels: Record<string, string> = { [DIGEST_LABEL]: D1 }): ImageInfo => ({ ref: REF, id: OLD, labels });

test('the image hoard built and replaced is removed when nothing uses it (rmi by id, after asking)', async (t) => {
  const { result, calls } = await step(t, hoards(), {});
  assert.equal(result.outcome, 'reimported');
  assert.deepEqual(result.oldImage, { id: OLD, removed: true });
  assert.deepEqual(calls, [`import ${REF}`, `users ${OLD}`, `rmi ${OLD}`]);
});

test('kept, saying why: not built by hoard, still tagged, used by a container; never asked to rmi', async (t) => {
  const cases: Array<[string, ImageInfo, Parameters<typeof fakeEngine>[0], string]> = [
    ['no label', hoards({}), {}, 'not built by hoard'],
    ['another tag', hoards(), { users: { tags: ['arista/ceos:keep'], containers: [] } }, 'still tagged arista/ceos:keep'],
    ['a container', hoards(), { users: { tags: [], containers: ['clab-lab-ceos1'] } }, 'used by container clab-lab-ceos1'],
  ];
  for (const [label, old, opts, reason] of cases) {
    const { result, calls } = await step(t, old, opts);
    assert.equal(result.outcome, 'reimported', label);
    assert.deepEqual(result.oldImage, { id: OLD, removed: false, reason }, label);
    assert.ok(!calls.some((c) => c.startsWith('rmi')), `${label}: no rmi`);
  }
});

test('the engine refusing rmi keeps the image with its reason, and the artifact still succeeds; an image gone meanwhile is not mentioned', async (t) => {
  const refusal = new HoardError('E_ENGINE', 'podman rmi failed: image is in use by a container');
  const refused = await step(t, hoards(), { remove: refusal });
  assert.equal(refused.result.outcome, 'reimported');
  assert.equal(refused.result.error, undefined);
  assert.deepEqual(refused.result.oldImage, { id: OLD, removed: false, reason: refusal.message });

  const gone = await step(t, hoards(), { users: null });
  assert.equal(gone.result.oldImage, undefined);
  assert.ok(!gone.calls.some((c) => c.startsWith('rmi')));
});

test('a file no engine can take: the plan says not-archive (before what sync could fix), the step fails it without the engine', async (t) => {
  const archiveError = { code: 'E_ENGINE', message: "ceos's file artifacts/ceos.tar.xz is not a tar archive (compressed or not); cannot import it as an image" };
  for (const state of ['missing', 'stale', 'unavailable'] as const) {
    const [p] = plan([{ artifact, observed: { ...observed, output: 'missing' }, image: { state, archiveError } }], { force: false });
    assert.equal(p!.image, 'not-archive', state);
    assert.equal(p!.inSync, false);
    const ev = { type: 'plan' as const, name: 'ceos', path: 'ceos.tar.xz', inSync: false, blob: p!.blob, output: p!.output, image: p!.image, imageRef: REF, ...(p!.imageReason ? { imageReason: p!.imageReason } : {}) };
    assert.deepEqual(stateOf(ev), { state: 'not an image archive', detail: archiveError.message }, state);
  }
  const { engine, calls } = fakeEngine({});
  const ensure = createImageStep({ images: { support: { engine: async () => engine, classify: async () => assert.fail('not classified again') }, engine, error: null }, state: openSyncState(tmpDir(t)), emit: () => {} });
  const [p] = plan([{ artifact, observed, image: { state: 'missing', archiveError } }], { force: false });
  assert.deepEqual(await ensure(p!, D2, '/store/blob'), { outcome: 'failed', error: archiveError });
  assert.deepEqual(calls, []);
});
