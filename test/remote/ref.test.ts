// The team cache's pure parts: addresses, the anchoring manifest, challenges, and where
// credentials are found (real files and a real helper program on PATH).
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tmpDir } from '../helpers.ts';
import { parseChallenge } from '../../src/remote/client.ts';
import { findCredentials } from '../../src/remote/credentials.ts';
import { artifactManifest, EMPTY_CONFIG_DIGEST, parseRemote } from '../../src/remote/ref.ts';
import { HoardError } from '../../src/core/errors.ts';

test('a remote is HTTPS, except on loopback or for a registry marked insecure in the config', () => {
  assert.equal(parseRemote('oci://ghcr.io/acme/hoard-cache', 'x').base, 'https://ghcr.io');
  assert.equal(parseRemote('oci://registry.example.com:5000/lab/cache', 'x').base, 'https://registry.example.com:5000');
  assert.equal(parseRemote('oci://127.0.0.1:5000/lab/cache', 'x').base, 'http://127.0.0.1:5000');
  assert.equal(parseRemote('oci://localhost:5000/lab/cache', 'x').base, 'http://localhost:5000');
  assert.equal(parseRemote('oci://[::1]:5000/lab/cache', 'x').base, 'http://[::1]:5000');
  assert.equal(parseRemote('oci://registry.lan:5000/lab/cache', 'x', { 'registry.lan:5000': { insecure: true } }).base, 'http://registry.lan:5000');
  assert.equal(parseRemote('oci://Registry.LAN/lab/cache/', 'x').spec, 'oci://registry.lan/lab/cache');
  for (const bad of ['https://ghcr.io/acme/cache', 'oci://ghcr.io', 'oci://ghcr.io/Acme/Cache', 'oci://ghcr.io/a//b', 'ghcr.io/acme/cache']) {
    assert.throws(() => parseRemote(bad, '--remote'), (e: unknown) => e instanceof HoardError && e.code === 'E_USAGE' && e.message.startsWith('--remote:') && /oci:\/\//.test(e.hint ?? ''), bad);
  }
});

test('the anchoring manifest is the same bytes on every machine; the OCI 1.0 form has no artifactType', () => {
  const blob = { digest: `sha256:${'a'.repeat(64)}` as const, size: 5, title: 'cEOS-lab.tar.xz' };
  const one = artifactManifest(blob);
  assert.deepEqual(one, artifactManifest({ ...blob }));
  assert.equal(
    one.toString(),
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.hoard.artifact.v1",' +
      `"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"${EMPTY_CONFIG_DIGEST}","size":2},` +
      `"layers":[{"mediaType":"application/octet-stream","digest":"sha256:${'a'.repeat(64)}","size":5,"annotations":{"org.opencontainers.image.title":"cEOS-lab.tar.xz"}}]}`,
  );
  assert.equal(EMPTY_CONFIG_DIGEST, 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  const legacy = JSON.parse(artifactManifest(blob, true).toString());
  assert.equal(legacy.artifactType, undefined);
  assert.equal(legacy.config.mediaType, 'application/vnd.hoard.config.v1+json');
});

test('challenges: Basic, and Bearer with several scopes', () => {
  assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' }, scopes: [] });
  const b = parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push repository:c/d:pull",error="insufficient_scope"');
  assert.deepEqual(b, {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'registry.example', error: 'insufficient_scope' },
    scopes: ['repository:a/b:pull,push', 'repository:c/d:pull'],
  });
  assert.equal(parseChallenge('Negotiate abc'), null);
});

test('credentials: the environment, then $REGISTRY_AUTH_FILE, podman\'s auth.json, docker\'s config.json; credsStore through a helper', async (t) => {
  const dir = tmpDir(t);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const env: Record<string, string | undefined> = { HOME: dir, PATH: process.env.PATH };
  assert.equal(await findCredentials('reg.example', 'lab/cache', env), null);

  await fs.mkdir(path.join(dir, '.docker'));
  await fs.writeFile(path.join(dir, '.docker', 'config.json'), JSON.stringify({ auths: { 'https://reg.example': { auth: b64('docker:pw1') } } }));
  assert.deepEqual(await findCredentials('reg.example', 'lab/cache', env), { username: 'docker', password: 'pw1', source: path.join(dir, '.docker', 'config.json') });

  // podman's file comes first; a key with a path is more specific than the host alone.
  const runtime = path.join(dir, 'run');
  await fs.mkdir(path.join(runtime, 'containers'), { recursive: true });
  await fs.writeFile(path.join(runtime, 'containers', 'auth.json'), JSON.stringify({ auths: { 'reg.example': { auth: b64('host:pw2') }, 'reg.example/lab': { auth: b64('lab:pw3') } } }));
  env.XDG_RUNTIME_DIR = runtime;
  assert.equal((await findCredentials('reg.example', 'lab/cache', env))!.username, 'lab');
  assert.equal((await findCredentials('reg.example', 'other/cache', env))!.username, 'host');

  env.REGISTRY_AUTH_FILE = path.join(dir, 'explicit.json');
  await fs.writeFile(env.REGISTRY_AUTH_FILE, JSON.stringify({ auths: { 'reg.example': { auth: b64('explicit:pw4') } } }));
  assert.equal((await findCredentials('reg.example', 'lab/cache', env))!.username, 'explicit');

  env.HOARD_REMOTE_USERNAME = 'ci';
  env.HOARD_REMOTE_PASSWORD = 'token';
  assert.deepEqual(await findCredentials('reg.example', 'lab/cache', env), { username: 'ci', password: 'token', source: 'HOARD_REMOTE_USERNAME/HOARD_REMOTE_PASSWORD' });

  // credsStore: an entry without "auth" (as `docker login` writes with a store) asks the helper.
  const bin = path.join(dir, 'bin');
  await fs.mkdir(bin);
  await fs.writeFile(path.join(bin, 'docker-credential-teststore'), '#!/bin/sh\nread host\nif [ "$host" = other.example ]; then echo "credentials not found in native keychain"; exit 1; fi\necho \'{"Username":"stored","Secret":"pw5"}\'\n', { mode: 0o755 });
  const storeEnv = { HOME: dir, PATH: `${bin}:${process.env.PATH}`, REGISTRY_AUTH_FILE: path.join(dir, 'store.json') };
  await fs.writeFile(storeEnv.REGISTRY_AUTH_FILE, JSON.stringify({ auths: { 'reg.example': {} }, credsStore: 'teststore' }));
  assert.deepEqual(await findCredentials('reg.example', 'lab/cache', storeEnv), { username: 'stored', password: 'pw5', source: `docker-credential-teststore (${storeEnv.REGISTRY_AUTH_FILE})` });
  assert.equal((await findCredentials('other.example', 'lab/cache', storeEnv)), null);
});

test('the merge driver keeps "remote" (one side set it, the other added an artifact)', async () => {
  const { mergeManifests } = await import('../../src/manifest/merge.ts');
  const base = { version: 1 as const, artifacts: {} };
  const ours = { version: 1 as const, remote: 'oci://ghcr.io/acme/cache', artifacts: {} };
  const theirs = { version: 1 as const, artifacts: { a: { url: 'https://example.com/a.bin' } } };
  const r = mergeManifests(base, ours, theirs);
  assert.deepEqual(r.conflicts, []);
  assert.equal(r.doc?.remote, 'oci://ghcr.io/acme/cache');
  assert.match(r.text, /^\{\n {2}"version": 1,\n {2}"remote": "oci:\/\/ghcr\.io\/acme\/cache",\n {2}"artifacts"/);
});
