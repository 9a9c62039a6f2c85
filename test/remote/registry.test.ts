// The team cache against a real CNCF Distribution registry (docker-registry), with skopeo as an
// independent client. Origins are loopback HTTP servers that count their requests.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { hoard, jsonLines, randomData, ROOT, sha256, startServer, tmpDir, type RunResult } from '../helpers.ts';
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

const validate = new Ajv2020({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(path.join(ROOT, 'schemas', 'events.schema.json'), 'utf8')));
/** Every --json line matches schemas/events.schema.json. */
function schemaCheck(r: RunResult) {
  for (const e of jsonLines(r.stdout)) if (!validate(e)) assert.fail(`does not match the schema: ${JSON.stringify(e)}\n${JSON.stringify(validate.errors)}`);
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

test('a push of 8 blobs or more reads the tag list, page by page, instead of a HEAD each; a missing anchor is put back', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  // In front of the registry: tag lists in pages of 3 with a Link to the next, as GHCR pages them
  // (Distribution 2.8 answers every tag at once, whatever n asks).
  const rec = await startRecorder(t, `http://${reg.host}`, (req, res) => {
    if (!req.url?.includes('/tags/list')) return false;
    const u = new URL(req.url, 'http://x');
    fetch(`http://${reg.host}${u.pathname}`, { headers: req.headers.authorization ? { authorization: req.headers.authorization } : {} }).then(async (r) => {
      const text = await r.text();
      if (r.status !== 200) {
        res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
        return res.end(text);
      }
      const tags: string[] = (JSON.parse(text).tags ?? []).sort();
      const last = u.searchParams.get('last');
      const start = last ? tags.indexOf(last) + 1 : 0;
      const page = tags.slice(start, start + 3);
      res.writeHead(200, {
        'content-type': 'application/json',
        ...(start + 3 < tags.length ? { link: `<${u.pathname}?n=3&last=${page.at(-1)}>; rel="next"` } : {}),
      });
      res.end(JSON.stringify({ name: 'lab/cache', tags: page }));
    }, () => res.destroy());
    return true;
  });
  const files = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`f${i}.bin`, randomData(2000 + i)]));
  const p = await setup(t, `oci://${rec.host}/lab/cache`, files);
  ok(await p.run('store1', ['sync']));
  const first = await p.run('store1', ['push', '--json']);
  ok(first);
  assert.equal(jsonLines(first.stdout).find((e) => e.type === 'push-summary')!.pushed, 10);

  // Nothing to do: the tag list alone says so (10 tags in pages of 3), no HEAD, no upload.
  let seen = rec.requests.length;
  const again = await p.run('store1', ['push', '--json']);
  ok(again);
  const s2 = jsonLines(again.stdout).find((e) => e.type === 'push-summary')!;
  assert.equal(s2.present, 10);
  assert.equal(s2.pushed, 0);
  const asked = rec.requests.slice(seen);
  assert.ok(asked.length >= 4, `every page was read: ${asked.map((r) => r.path).join(', ')}`);
  assert.ok(asked.every((r) => r.method === 'GET' && r.path.startsWith('/v2/lab/cache/tags/list')), asked.map((r) => `${r.method} ${r.path}`).join('\n'));

  // One anchor deleted (its blob stays): the next push puts that anchor back, and only that one.
  const hex = sha256(files['f3.bin']!);
  const head = await fetch(`http://${reg.host}/v2/lab/cache/manifests/sha256-${hex}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const del = await fetch(`http://${reg.host}/v2/lab/cache/manifests/${head.headers.get('docker-content-digest')}`, { method: 'DELETE' });
  assert.equal(del.status, 202);
  seen = rec.requests.length;
  ok(await p.run('store1', ['push']));
  const puts = rec.requests.slice(seen).filter((r) => r.method === 'PUT');
  assert.deepEqual(puts.map((r) => r.path), [`/v2/lab/cache/manifests/sha256-${hex}`]);
  const back = await fetch(`http://${reg.host}/v2/lab/cache/manifests/sha256-${hex}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(back.status, 200);
});

test('Basic auth (htpasswd): credentials from the environment, a docker config file, a credential helper; a wrong password fails naming registry and source', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t, { basic: { alice: 's3cret-pw' } });
  const a = randomData(5000);
  const p = await setup(t, reg.remote('team/cache'), { 'a.bin': a });
  ok(await p.run('store1', ['sync']));

  // No credentials at all: a clear error, exit 1.
  const anon = await p.run('store1', ['push']);
  assert.equal(anon.code, 1, anon.stderr);
  assert.match(anon.stderr, /wants credentials and none were found/);

  // A wrong password: exit 1, the registry and the source named, never the secret.
  const wrong = await p.run('store1', ['push'], { HOARD_REMOTE_USERNAME: 'alice', HOARD_REMOTE_PASSWORD: 'not-the-password' });
  assert.equal(wrong.code, 1, wrong.stderr);
  assert.match(wrong.stderr, new RegExp(`oci://${reg.host}/team/cache`));
  assert.match(wrong.stderr, /HOARD_REMOTE_USERNAME\/HOARD_REMOTE_PASSWORD/);
  assert.doesNotMatch(wrong.stdout + wrong.stderr, /not-the-password/);

  // A sync with the wrong password still works: from the origin, with one warning.
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const fallback = await p.run('store-x', ['sync'], { HOARD_REMOTE_USERNAME: 'alice', HOARD_REMOTE_PASSWORD: 'nope' });
  ok(fallback);
  assert.match(fallback.stdout, /a {2}downloaded/);
  assert.equal(fallback.stderr.match(/warning:/g)?.length, 1, fallback.stderr);

  // The environment's credentials.
  ok(await p.run('store1', ['push'], { HOARD_REMOTE_USERNAME: 'alice', HOARD_REMOTE_PASSWORD: 's3cret-pw' }));

  // A docker config file (as `docker login` writes it) for the pull on the other machine.
  await fs.mkdir(path.join(p.base, 'docker'));
  await fs.writeFile(path.join(p.base, 'docker', 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:s3cret-pw').toString('base64') } } }));
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const before = p.origin.total();
  const pulled = await p.run('store2', ['sync']);
  ok(pulled);
  assert.match(pulled.stdout, /pulled from cache/);
  assert.equal(p.origin.total(), before);

  // A credential helper on PATH (credHelpers), as docker runs it: `docker-credential-<name> get`, the host on stdin.
  const bin = path.join(p.base, 'bin');
  await fs.mkdir(bin);
  const seen = path.join(p.base, 'helper-saw');
  await fs.writeFile(
    path.join(bin, 'docker-credential-hoardtest'),
    `#!/bin/sh\nread host\necho "$1 $host" > '${seen}'\necho '{"ServerURL":"'"$host"'","Username":"alice","Secret":"s3cret-pw"}'\n`,
    { mode: 0o755 },
  );
  await fs.writeFile(path.join(p.base, 'docker', 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'hoardtest' } }));
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const helped = await p.run('store3', ['sync'], { PATH: `${bin}:${process.env.PATH}` });
  ok(helped);
  assert.match(helped.stdout, /pulled from cache/);
  assert.equal((await fs.readFile(seen, 'utf8')).trim(), `get ${reg.host}`);
});

test('token auth (ES256 JWTs from a loopback token server): a read-only token pulls but cannot push (insufficient_scope), a wrong password fails, a pushing user can', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t, { token: { reader: { password: 'r', actions: ['pull'] }, writer: { password: 'w', actions: ['pull', 'push'] } } });
  const a = randomData(70_000);
  const p = await setup(t, reg.remote('lab/cache'), { 'a.bin': a });
  ok(await p.run('store1', ['sync']));

  const ro = await p.run('store1', ['push'], { HOARD_REMOTE_USERNAME: 'reader', HOARD_REMOTE_PASSWORD: 'r' });
  assert.equal(ro.code, 1, ro.stderr);
  assert.match(ro.stderr, /insufficient_scope/);
  assert.match(ro.stderr, /HOARD_REMOTE_USERNAME/);

  const wrong = await p.run('store1', ['push'], { HOARD_REMOTE_USERNAME: 'writer', HOARD_REMOTE_PASSWORD: 'bad' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /token service .* refused the credentials from HOARD_REMOTE_USERNAME/);

  ok(await p.run('store1', ['push'], { HOARD_REMOTE_USERNAME: 'writer', HOARD_REMOTE_PASSWORD: 'w' }));
  assert.ok(reg.tokenRequests.some((r) => r.user === 'writer' && r.scopes.includes('repository:lab/cache:pull,push')));

  // Reading with the read-only user's token works.
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const before = p.origin.total();
  const r = await p.run('store2', ['sync'], { HOARD_REMOTE_USERNAME: 'reader', HOARD_REMOTE_PASSWORD: 'r' });
  ok(r);
  assert.match(r.stdout, /pulled from cache/);
  assert.equal(p.origin.total(), before);
});

test('identity tokens (docker login\'s "identitytoken", a helper\'s "<token>"): exchanged by an OAuth2 refresh-token POST at the realm; the registry accepts the tokens; a refused one fails naming its file, never the secret', { skip: registrySkip }, async (t) => {
  const writerToken = 'rt-writer-9f8e7d6c5b4a';
  const readerToken = 'rt-reader-1a2b3c4d5e6f';
  const reg = await startRegistry(t, {
    token: { writer: { password: 'w', actions: ['pull', 'push'], refreshToken: writerToken }, reader: { password: 'r', actions: ['pull'], refreshToken: readerToken } },
  });
  // Every request that reaches the registry itself, to show the identity token never does.
  const rec = await startRecorder(t, `http://${reg.host}`);
  const a = randomData(60_000);
  const p = await setup(t, `oci://${rec.host}/lab/cache`, { 'a.bin': a });
  ok(await p.run('store1', ['sync']));

  // As `docker login` writes it for a registry whose token service hands out refresh tokens.
  const dockerDir = path.join(p.base, 'docker');
  await fs.mkdir(dockerDir);
  const dockerConfig = path.join(dockerDir, 'config.json');
  await fs.writeFile(dockerConfig, JSON.stringify({ auths: { [rec.host]: { auth: Buffer.from('writer:').toString('base64'), identitytoken: writerToken } } }));
  // (The sync above asked for an anonymous token: no credentials yet.)
  const seen = reg.tokenRequests.length;
  const pushed = await p.run('store1', ['push']);
  ok(pushed);
  const posts = reg.tokenRequests.slice(seen).filter((r) => r.grant !== undefined);
  assert.ok(posts.length > 0, 'the token came from a POST');
  assert.ok(posts.every((r) => r.grant === 'refresh_token' && r.clientId === 'hoard' && r.user === 'writer' && !r.basic && r.contentType === 'application/x-www-form-urlencoded'), JSON.stringify(posts));
  assert.ok(posts.some((r) => r.scopes.includes('repository:lab/cache:pull,push')), JSON.stringify(posts));
  assert.equal(reg.tokenRequests.slice(seen).filter((r) => r.grant === undefined).length, 0, 'no GET with a password');
  for (const r of rec.requests) assert.doesNotMatch(`${r.path} ${JSON.stringify(r.headers)}`, new RegExp(writerToken), 'the identity token went to the registry');
  assert.doesNotMatch(pushed.stdout + pushed.stderr, new RegExp(writerToken));

  // The other machine: a credential helper that answers with the user name "<token>".
  const bin = path.join(p.base, 'bin');
  await fs.mkdir(bin);
  await fs.writeFile(path.join(bin, 'docker-credential-hoardtok'), `#!/bin/sh\nread host\necho '{"ServerURL":"'"$host"'","Username":"<token>","Secret":"${readerToken}"}'\n`, { mode: 0o755 });
  await fs.writeFile(dockerConfig, JSON.stringify({ credHelpers: { [rec.host]: 'hoardtok' } }));
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const before = p.origin.total();
  const pulled = await p.run('store2', ['sync'], { PATH: `${bin}:${process.env.PATH}` });
  ok(pulled);
  assert.match(pulled.stdout, /pulled from cache/);
  assert.equal(p.origin.total(), before, 'no request reached the origin');
  assert.ok(reg.tokenRequests.some((r) => r.grant === 'refresh_token' && r.user === 'reader'));

  // A revoked (unknown) identity token: push exits 1 naming the file, never the token ...
  const revoked = 'rt-revoked-000000';
  await fs.writeFile(dockerConfig, JSON.stringify({ auths: { [rec.host]: { auth: Buffer.from('writer:').toString('base64'), identitytoken: revoked } } }));
  const refused = await p.run('store1', ['push', 'a']);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, new RegExp(`refused the identity token from ${dockerConfig.replace(/[.]/g, '\\.')}`));
  assert.match(refused.stderr, /hint: .*docker login/);
  assert.doesNotMatch(refused.stdout + refused.stderr, new RegExp(revoked));
  // ... and a sync with it still works, from the origin, with one warning.
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const fallback = await p.run('store3', ['sync']);
  ok(fallback);
  assert.match(fallback.stdout, /a {2}downloaded/);
  assert.equal(fallback.stderr.match(/warning:/g)?.length, 1, fallback.stderr);
});

test('blob GETs redirected to object storage (Distribution redirect middleware) follow the redirect without Authorization', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t, { basic: { ci: 'pw' }, redirect: true });
  const a = randomData(200_000);
  const p = await setup(t, reg.remote('lab/cache'), { 'a.bin': a });
  const creds = { HOARD_REMOTE_USERNAME: 'ci', HOARD_REMOTE_PASSWORD: 'pw' };
  ok(await p.run('store1', ['sync']));
  ok(await p.run('store1', ['push'], creds));
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const before = p.origin.total();
  const r = await p.run('store2', ['sync'], creds);
  ok(r);
  assert.match(r.stdout, /pulled from cache/);
  assert.equal(p.origin.total(), before);
  const gets = reg.blobServerRequests.filter((q) => q.path.includes(sha256(a)));
  assert.ok(gets.length >= 1, 'the blob came from the redirect target');
  assert.ok(reg.blobServerRequests.every((q) => !q.authorization), 'no Authorization header reached the blob server');
});

test('chunked upload with a tiny chunkSize: PATCH after PATCH, each at the Range the registry returned, to its newest Location', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  const proxy = await startRecorder(t, `http://${reg.host}`);
  const a = randomData(50_000);
  const p = await setup(t, `oci://${proxy.host}/lab/chunks`, { 'a.bin': a });
  await fs.mkdir(path.join(p.config, 'hoard'), { recursive: true });
  await fs.writeFile(path.join(p.config, 'hoard', 'config.json'), JSON.stringify({ remotes: { [proxy.host]: { chunkSize: 16384 } } }));
  ok(await p.run('store1', ['sync']));
  ok(await p.run('store1', ['push']));
  const patches = proxy.requests.filter((q) => q.method === 'PATCH');
  assert.equal(patches.length, 4); // 16384 × 3 + 848
  assert.deepEqual(patches.map((q) => q.headers['content-range']), ['0-16383', '16384-32767', '32768-49151', '49152-49999']);
  // Distribution hands out a new upload URL each time: no two PATCHes went to the same one.
  assert.equal(new Set(patches.map((q) => q.path)).size, 4);
  // The registry holds exactly these bytes.
  assert.deepEqual(await fs.readFile(reg.blobData(sha256(a))), a);
});

test('a pull cut short is resumed from the registry with a Range request', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  const a = randomData(400_000);
  const hex = sha256(a);
  let cut = false;
  const proxy = await startRecorder(t, `http://${reg.host}`, (req, res) => {
    if (cut || req.method !== 'GET' || !req.url?.includes(`/blobs/sha256:${hex}`)) return false;
    cut = true;
    // Half the blob, then the connection drops.
    res.writeHead(200, { 'content-length': String(a.length), 'content-type': 'application/octet-stream' });
    res.write(a.subarray(0, 150_000), () => setTimeout(() => req.socket.destroy(), 20));
    return true;
  });
  const p = await setup(t, `oci://${proxy.host}/lab/resume`, { 'a.bin': a });
  ok(await p.run('store1', ['sync']));
  ok(await p.run('store1', ['push']));
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const before = p.origin.total();
  const r = await p.run('store2', ['sync', '--retry-delay', '0.01']);
  ok(r);
  assert.match(r.stdout, /pulled from cache/);
  assert.equal(p.origin.total(), before);
  const gets = proxy.requests.filter((q) => q.method === 'GET' && q.path.includes(hex));
  assert.equal(gets.length, 2);
  assert.equal(gets[1]!.headers.range, 'bytes=150000-');
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'a.bin')), a);
});

test('a corrupt blob in the registry is rejected and the origin used, with one warning', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  const a = randomData(100_000);
  const p = await setup(t, reg.remote('lab/corrupt'), { 'a.bin': a });
  ok(await p.run('store1', ['sync']));
  ok(await p.run('store1', ['push']));
  // Same size, other bytes: what bit rot or a bad registry backend would serve.
  const data = reg.blobData(sha256(a));
  await fs.writeFile(data, randomData(a.length));
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const before = p.origin.total();
  const r = await p.run('store2', ['sync']);
  ok(r);
  assert.match(r.stdout, /a {2}downloaded 97\.7 KiB/);
  assert.equal(p.origin.total(), before + 1);
  assert.match(r.stderr, /digest mismatch.*downloading from its url instead of the team cache/);
  assert.equal(r.stderr.match(/warning:/g)?.length, 1, r.stderr);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'a.bin')), a);
});

test('a registry that is down: the origin is used, with one warning for the whole sync', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  const files = { 'a.bin': randomData(1000), 'b.bin': randomData(2000), 'c.bin': randomData(3000) };
  const p = await setup(t, reg.remote('lab/down'), files);
  await reg.stop();
  const r = await p.run('store1', ['sync']);
  ok(r);
  assert.equal(p.origin.total(), 3);
  assert.equal(r.stderr.match(/warning:/g)?.length, 1, r.stderr);
  assert.match(r.stderr, /connection refused; not using the team cache in this run/);
  // --no-remote: not even asked.
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const quiet = await p.run('store2', ['sync', '--no-remote']);
  ok(quiet);
  assert.doesNotMatch(quiet.stderr, /warning/);
});

test('two concurrent pushes of the same lock both succeed; a second repository mounts instead of uploading', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  const files = { 'a.bin': randomData(2_000_000), 'b.bin': randomData(500_000) };
  const p = await setup(t, reg.remote('lab/one'), files);
  ok(await p.run('store1', ['sync']));
  const [x, y] = await Promise.all([p.run('store1', ['push', '--json']), p.run('store1', ['push', '--json'])]);
  ok(x);
  ok(y);
  for (const r of [x, y]) {
    const s = jsonLines(r.stdout).find((e) => e.type === 'push-summary')!;
    assert.equal(s.failed, 0);
    assert.equal((s.pushed as number) + (s.present as number), 2);
  }
  for (const [n, b] of Object.entries(files)) {
    const { stdout } = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/lab/one:sha256-${sha256(b)}`]);
    assert.equal(JSON.parse(stdout).layers[0].annotations['org.opencontainers.image.title'], n);
  }
  // Another project's cache on the same registry: the blobs are mounted from lab/one, no bytes sent.
  await fs.mkdir(path.join(p.config, 'hoard'), { recursive: true });
  await fs.writeFile(path.join(p.config, 'hoard', 'config.json'), JSON.stringify({ remotes: { [reg.host]: { mountFrom: ['lab/one'] } } }));
  const m = await p.run('store1', ['push', '--json', '--remote', reg.remote('lab/two')]);
  ok(m);
  const s = jsonLines(m.stdout).find((e) => e.type === 'push-summary')!;
  assert.equal(s.mounted, 2);
  assert.equal(s.bytesPushed, 0);
});

/** Reads a request's body, then answers: a fault injected in front of the real registry. */
function answer(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, status: number, headers: Record<string, string>, body = ''): true {
  req.resume();
  req.on('end', () => res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers }).end(body));
  return true;
}

test('a 401 in the middle of a chunked upload (an expired token) gets a new token and the chunk is sent again', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t, { token: { writer: { password: 'w', actions: ['pull', 'push'] } } });
  let patches = 0;
  // Fault injection in front of the real registry: the second PATCH is refused as if the token had expired.
  const proxy = await startRecorder(t, `http://${reg.host}`, (req, res) => {
    if (req.method !== 'PATCH' || ++patches !== 2) return false;
    return answer(req, res, 401, { 'www-authenticate': `Bearer realm="${reg.tokenRealm}",service="hoard-test",scope="repository:lab/reauth:pull,push"` });
  });
  const a = randomData(40_000);
  const p = await setup(t, `oci://${proxy.host}/lab/reauth`, { 'a.bin': a });
  await fs.mkdir(path.join(p.config, 'hoard'), { recursive: true });
  await fs.writeFile(path.join(p.config, 'hoard', 'config.json'), JSON.stringify({ remotes: { [proxy.host]: { chunkSize: 16384 } } }));
  ok(await p.run('store1', ['sync']));
  const tokensBefore = reg.tokenRequests.length;
  ok(await p.run('store1', ['push'], { HOARD_REMOTE_USERNAME: 'writer', HOARD_REMOTE_PASSWORD: 'w' }));
  const ranges = proxy.requests.filter((q) => q.method === 'PATCH').map((q) => q.headers['content-range']);
  assert.deepEqual(ranges, ['0-16383', '16384-32767', '16384-32767', '32768-39999']);
  assert.ok(reg.tokenRequests.length > tokensBefore + 1, 'a new token was fetched after the 401');
  assert.deepEqual(await fs.readFile(reg.blobData(sha256(a))), a);
});

test('a 413 to the monolithic PUT: the blob goes up in PATCH chunks in a new session', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  const a = randomData(60_000);
  // Fault injection: a proxy's body limit, as nginx's client_max_body_size answers it.
  const proxy = await startRecorder(t, `http://${reg.host}`, (req, res) =>
    req.method === 'PUT' && req.headers['content-length'] === String(a.length) ? answer(req, res, 413, {}, 'too large') : false,
  );
  const p = await setup(t, `oci://${proxy.host}/lab/big`, { 'a.bin': a });
  ok(await p.run('store1', ['sync']));
  ok(await p.run('store1', ['push']));
  assert.equal(proxy.requests.filter((q) => q.method === 'PATCH').length, 1);
  assert.deepEqual(await fs.readFile(reg.blobData(sha256(a))), a);
});

test('a registry that refuses artifactType gets the OCI 1.0 form (a hoard config media type)', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  let refused = false;
  // Fault injection: Distribution 2.8 itself accepts artifactType; older registries answer MANIFEST_INVALID.
  const proxy = await startRecorder(t, `http://${reg.host}`, (req, res) => {
    if (refused || req.method !== 'PUT' || !req.url?.includes('/manifests/')) return false;
    refused = true;
    return answer(req, res, 400, { 'content-type': 'application/json' }, '{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}');
  });
  const a = randomData(1000);
  const p = await setup(t, `oci://${proxy.host}/lab/legacy`, { 'a.bin': a });
  ok(await p.run('store1', ['sync']));
  ok(await p.run('store1', ['push']));
  const { stdout } = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/lab/legacy:sha256-${sha256(a)}`]);
  const m = JSON.parse(stdout);
  assert.equal(m.artifactType, undefined);
  assert.equal(m.config.mediaType, 'application/vnd.hoard.config.v1+json');
  assert.equal(m.layers[0].digest, `sha256:${sha256(a)}`);
});

test('sync --push (and HOARD_PUSH=1, config "push": true) pushes what came from the origin, not what came from the cache', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  const files = { 'a.bin': randomData(3000), 'b.bin': randomData(4000) };
  const p = await setup(t, reg.remote('lab/ci'), files);
  const first = await p.run('store1', ['sync', 'a', '--push', '--json']);
  ok(first);
  const s1 = jsonLines(first.stdout).find((e) => e.type === 'push-summary')!;
  assert.equal(s1.pushed, 1);
  // HOARD_PUSH=1 on another machine: a comes from the cache (not pushed again), b from the origin (pushed).
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const second = await p.run('store2', ['sync', '--json'], { HOARD_PUSH: '1' });
  ok(second);
  const events = jsonLines(second.stdout);
  schemaCheck(first);
  schemaCheck(second);
  assert.ok(events.some((e) => e.type === 'artifact' && e.fromCache === true));
  assert.ok(events.some((e) => e.type === 'upload'));
  assert.deepEqual(events.filter((e) => e.type === 'pushed').map((e) => e.name), ['b']);
  const summary = events.find((e) => e.type === 'summary')!;
  assert.equal(summary.bytesFromCache, 3000);
  assert.equal(summary.bytesDownloaded, 7000);
  // The config file's "push": true, a third machine: everything from the cache, nothing to push.
  await fs.mkdir(path.join(p.config, 'hoard'), { recursive: true });
  await fs.writeFile(path.join(p.config, 'hoard', 'config.json'), JSON.stringify({ push: true }));
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const before = p.origin.total();
  const third = await p.run('store3', ['sync', '--json']);
  ok(third);
  assert.equal(p.origin.total(), before);
  assert.equal(jsonLines(third.stdout).filter((e) => e.type === 'pushed').length, 0);
});

test('where the remote is set: --remote, HOARD_REMOTE, the manifest, the config file; status -v tells what the cache holds', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  const a = randomData(2000);
  const p = await setup(t, reg.remote('lab/manifest'), { 'a.bin': a });
  ok(await p.run('store1', ['sync', '--push']));
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const check = (r: RunResult) => /check a blob (oci:\/\/\S+): (.*)/.exec(r.stdout)?.slice(1, 3);
  assert.deepEqual(check(await p.run('store2', ['status', '-v'])), [reg.remote('lab/manifest'), 'in the team cache']);
  assert.deepEqual(check(await p.run('store2', ['status', '-v'], { HOARD_REMOTE: reg.remote('lab/env') })), [reg.remote('lab/env'), 'not in the team cache']);
  assert.deepEqual(check(await p.run('store2', ['status', '-v', '--remote', reg.remote('lab/flag')], { HOARD_REMOTE: reg.remote('lab/env') })), [reg.remote('lab/flag'), 'not in the team cache']);
  assert.equal(check(await p.run('store2', ['status', '-v', '--no-remote'])), undefined);
  // The config file's "remote" applies only when the manifest has none.
  await fs.mkdir(path.join(p.config, 'hoard'), { recursive: true });
  await fs.writeFile(path.join(p.config, 'hoard', 'config.json'), JSON.stringify({ remote: reg.remote('lab/file') }));
  assert.deepEqual(check(await p.run('store2', ['status', '-v'])), [reg.remote('lab/manifest'), 'in the team cache']);
  const doc = JSON.parse(await fs.readFile(path.join(p.dir, 'hoard.json'), 'utf8'));
  delete doc.remote;
  await fs.writeFile(path.join(p.dir, 'hoard.json'), JSON.stringify(doc));
  assert.deepEqual(check(await p.run('store2', ['status', '-v'])), [reg.remote('lab/file'), 'not in the team cache']);
});

test('"remote" in hoard.json: validated (exit 2 naming /remote), and kept when hoard writes the file', async (t) => {
  const a = randomData(1000);
  const origin = await startServer(t, { '/a.bin': a });
  const base = tmpDir(t);
  const file = path.join(base, 'hoard.json');
  await fs.writeFile(file, JSON.stringify({ version: 1, remote: 'https://ghcr.io/acme/cache', artifacts: { a: { url: origin.url('/a.bin') } } }));
  const bad = await hoard(['sync'], { cwd: base, store: path.join(base, 'store') });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /\/remote expected a team cache address: oci:\/\//);
  // A loopback remote nobody listens on: the entry is locked from the origin, and "remote" stays, in its canonical place.
  await fs.writeFile(file, JSON.stringify({ artifacts: { a: { url: origin.url('/a.bin') } }, remote: 'oci://127.0.0.1:9/acme/cache', version: 1 }));
  const r = await hoard(['sync'], { cwd: base, store: path.join(base, 'store') });
  ok(r);
  const text = await fs.readFile(file, 'utf8');
  assert.match(text, /^\{\n {2}"version": 1,\n {2}"remote": "oci:\/\/127\.0\.0\.1:9\/acme\/cache",\n {2}"artifacts": \{/);
  assert.match(text, new RegExp(sha256(a)));
});

test('an identity token for a registry that asks for a password (Basic auth): a clear error naming the file, and sync falls back to the origin', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t, { basic: { alice: 's3cret-pw' } });
  const a = randomData(3000);
  const p = await setup(t, reg.remote('team/cache'), { 'a.bin': a });
  ok(await p.run('store1', ['sync']));
  await fs.mkdir(path.join(p.base, 'docker'));
  const file = path.join(p.base, 'docker', 'config.json');
  await fs.writeFile(file, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:').toString('base64'), identitytoken: 'rt-not-a-password' } } }));
  const r = await p.run('store1', ['push']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`asks for a password \\(Basic auth\\), and ${file.replace(/[.]/g, '\\.')} holds an identity token`));
  assert.match(r.stderr, /hint: log in with a user name and password/);
  assert.doesNotMatch(r.stdout + r.stderr, /rt-not-a-password/);
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const fallback = await p.run('store2', ['sync']);
  ok(fallback);
  assert.match(fallback.stdout, /a {2}downloaded/);
  assert.equal(fallback.stderr.match(/warning:/g)?.length, 1, fallback.stderr);
});
