// The library API as a user gets it after `npm i hoard`: `import … from 'hoard'` resolved through
// package.json's "exports" (the built dist/lib.mjs and dist/types/), in a project of its own.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { randomData, ROOT, sha256, startServer, tmpDir } from '../helpers.ts';

const run = promisify(execFile);

/** A consumer project whose node_modules/hoard is this package (as `npm link` makes it). */
async function consumer(t: TestContext): Promise<string> {
  const dir = tmpDir(t, 'hoard-consumer-');
  await fs.mkdir(path.join(dir, 'node_modules', '@types'), { recursive: true });
  await fs.symlink(ROOT, path.join(dir, 'node_modules', 'hoard'));
  await fs.symlink(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'));
  await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  return dir;
}

// Written as a user would, against the documented API only.
const SCRIPT = `
import { createReadStream } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { HoardError, loadManifest, openStore, sync } from 'hoard';

const [storeDir, manifestFile, fileA, fileB] = process.argv.slice(2);
const out = { resolved: import.meta.resolve('hoard') };
const store = openStore(storeDir);
const a = await store.put(fileA);                        // a path
const b = await store.put(createReadStream(fileB));      // a stream
const c = await store.put(new TextEncoder().encode('hello'), { size: 5 }); // bytes, checked
out.digests = [a, b, c];
out.has = [await store.has(a), await store.has(b.slice(7)), await store.has('sha256:' + '0'.repeat(64))];
out.pathA = await store.get(a);
const errorOf = async (fn) => { try { await fn(); return null; } catch (e) { return { hoard: e instanceof HoardError, code: e.code }; } };
out.putMismatch = await errorOf(() => store.put(new TextEncoder().encode('other'), { digest: c }));
out.getUnknown = await errorOf(() => store.get('sha256:' + '1'.repeat(64)));
out.getBad = await errorOf(() => store.get('not-a-digest'));

// Damage b the way a person might (make it writable, write, make it read-only again).
const pathB = await store.get(b);
await chmod(pathB, 0o644);
await writeFile(pathB, 'damaged');
await chmod(pathB, 0o444);
out.getCorrupt = await errorOf(() => store.get(b));
out.hasCorruptAfter = await store.has(b);
const pathC = await store.get(c);
await chmod(pathC, 0o644);
await writeFile(pathC, 'HELLO');
await chmod(pathC, 0o444);
const verified = await store.verify();
out.verify = { blobs: verified.blobs, corrupt: verified.corrupt };
out.hasAfterVerify = [await store.has(a), await store.has(c)];

const events = [];
const manifest = await loadManifest(manifestFile);
const result = await sync({ manifest, storeRoot: storeDir, emit: (e) => events.push(e.type) });
out.sync = { summary: result.summary, events: [...new Set(events)], locked: (await loadManifest(manifestFile)).doc.artifacts.tool.digest };
console.log(JSON.stringify(out));
`;

test('import { openStore, loadManifest, sync } from \'hoard\': put (path, stream, bytes), has, get (verified), verify, sync', async (t) => {
  const dir = await consumer(t);
  await fs.writeFile(path.join(dir, 'use.mjs'), SCRIPT);
  const [dataA, dataB, tool] = [randomData(50_000), randomData(300_000), randomData(20_000)];
  await fs.writeFile(path.join(dir, 'a.bin'), dataA);
  await fs.writeFile(path.join(dir, 'b.bin'), dataB);
  const srv = await startServer(t, { '/tool.run': tool });
  const project = path.join(dir, 'lab');
  await fs.mkdir(project);
  await fs.writeFile(path.join(project, 'hoard.json'), JSON.stringify({ version: 1, artifacts: { tool: { url: srv.url('/tool.run') } } }));
  const storeDir = path.join(dir, 'store');

  const { stdout } = await run(process.execPath, ['use.mjs', storeDir, path.join(project, 'hoard.json'), 'a.bin', 'b.bin'], { cwd: dir });
  const out = JSON.parse(stdout);
  const [a, b, c] = [`sha256:${sha256(dataA)}`, `sha256:${sha256(dataB)}`, `sha256:${sha256(Buffer.from('hello'))}`];

  assert.equal(out.resolved, `file://${path.join(ROOT, 'dist', 'lib.mjs')}`, 'the package\'s exports point at the built library');
  assert.deepEqual(out.digests, [a, b, c]);
  assert.deepEqual(out.has, [true, true, false]);
  assert.equal(out.pathA, path.join(storeDir, 'v1', 'blobs', 'sha256', sha256(dataA)));
  assert.deepEqual(out.putMismatch, { hoard: true, code: 'E_INTEGRITY' });
  assert.deepEqual(out.getUnknown, { hoard: true, code: 'E_STORE' });
  assert.deepEqual(out.getBad, { hoard: true, code: 'E_USAGE' });
  assert.deepEqual(out.getCorrupt, { hoard: true, code: 'E_INTEGRITY' }, 'a damaged blob is never served');
  assert.equal(out.hasCorruptAfter, false, '...and it is removed');
  assert.deepEqual(out.verify, { blobs: 2, corrupt: [c] });
  assert.deepEqual(out.hasAfterVerify, [true, false]);
  assert.equal(out.sync.summary.misses, 1);
  assert.equal(out.sync.summary.failed, 0);
  for (const e of ['start', 'download', 'artifact', 'summary']) assert.ok(out.sync.events.includes(e), `sync emitted no ${e} event`);
  assert.equal(out.sync.locked, `sha256:${sha256(tool)}`);
  assert.equal(sha256(await fs.readFile(path.join(project, 'artifacts', 'tool.run'))), sha256(tool));
  assert.ok(existsSync(path.join(storeDir, 'v1', 'blobs', 'sha256', sha256(tool))));
});

test('the declarations in dist/types type-check a TypeScript consumer (and reject misuse)', async (t) => {
  const dir = await consumer(t);
  await fs.writeFile(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'] }, files: ['use.ts'] }),
  );
  await fs.writeFile(
    path.join(dir, 'use.ts'),
    `import { openStore, loadManifest, sync, HoardError, type Digest, type Store, type SyncResult } from 'hoard';
const store: Store = openStore('store');
const d: Digest = await store.put('a.bin');
const p: string = await store.get(d);
const has: boolean = await store.has(d);
const v: { blobs: number; corrupt: Digest[] } = await store.verify();
const r: SyncResult = await sync({ manifest: await loadManifest('hoard.json'), storeRoot: store.root, maxSize: 5e9 });
console.log(p, has, v, r.summary.hits, new HoardError('E_STORE', 'x').code);
// @ts-expect-error: get() needs a digest
await store.get();
// @ts-expect-error: has() resolves to a boolean
const wrong: string = await store.has(d);
`,
  );
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = await run(process.execPath, [tsc, '-p', '.'], { cwd: dir }).then(() => ({ code: 0, out: '' }), (e) => ({ code: e.code as number, out: `${e.stdout}${e.stderr}` }));
  assert.equal(r.code, 0, r.out);
});
