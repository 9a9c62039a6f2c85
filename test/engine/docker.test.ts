// The docker adapter and engine selection, through a scripted Runner.
//
// The real daemon runs in dockerd.test.ts and cli/images.test.ts (a private dockerd,
// test/fixtures/dockerd.ts). What stays scripted here is what a real daemon cannot be made to
// produce on demand: exact command lines and timeouts, a daemon that is down, a socket without
// permission, a missing binary, a query that hangs past its timeout, and API version errors.
// The one real docker test at the end runs the docker CLI against a socket that does not exist.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Digest } from '../../src/core/digest.ts';
import { HoardError } from '../../src/core/errors.ts';
import { createEngine, loadedImages, referenceKeys, selectEngine } from '../../src/engine/adapter.ts';
import { execaRunner } from '../../src/engine/runner.ts';
import { DIGEST_LABEL, type RunResult, type Runner } from '../../src/engine/types.ts';

interface Call {
  command: string;
  args: readonly string[];
  timeoutMs: number | undefined;
}

type Reply = Partial<RunResult> | Error;

/** A Runner that records every call and answers with `reply(command, args)`. */
function scripted(reply: (command: string, args: readonly string[]) => Reply) {
  const calls: Call[] = [];
  const runner: Runner = async (command, args, opts) => {
    calls.push({ command, args: [...args], timeoutMs: opts.timeoutMs });
    const r = reply(command, args);
    if (r instanceof Error) throw r;
    return { exitCode: 0, stdout: '', stderr: '', ...r };
  };
  return { runner, calls };
}

const DIGEST = `sha256:${'1'.repeat(64)}` as Digest;
const ID = `sha256:${'2'.repeat(64)}`;
const REPO_DIGEST = `sha256:${'3'.repeat(64)}`;

/** What `docker image inspect` prints for one image (the fields hoard reads, plus noise). */
function dockerImage(tags: string[], labels: Record<string, string> | null, id = ID) {
  return { Id: id, RepoTags: tags, RepoDigests: tags.map((t) => `${t.split(':')[0]}@${REPO_DIGEST}`), Size: 1234, Config: { Env: ['PATH=/bin'], Labels: labels } };
}

const DAEMON_DOWN = 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?';
const PERMISSION_DENIED =
  'permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get "http://%2Fvar%2Frun%2Fdocker.sock/v1.47/images/json": dial unix /var/run/docker.sock: connect: permission denied';

function engineError(check: (err: HoardError) => void) {
  return (err: unknown) => {
    assert.ok(err instanceof HoardError, `not a HoardError: ${String(err)}`);
    assert.equal(err.code, 'E_ENGINE');
    check(err);
    return true;
  };
}

test('inspect: one `docker image inspect` for all refs; missing ones are absent, not errors', async () => {
  const { runner, calls } = scripted(() => ({
    exitCode: 1,
    stdout: JSON.stringify([dockerImage(['arista/ceos:4.32.1F'], { [DIGEST_LABEL]: DIGEST }), dockerImage(['alpine:3.20'], null, `sha256:${'4'.repeat(64)}`)]),
    stderr: 'Error response from daemon: No such image: nokia/srlinux:24.3\nError: No such image: missing:1',
  }));
  const docker = createEngine('docker', runner);
  const refs = ['arista/ceos:4.32.1F', 'nokia/srlinux:24.3', 'docker.io/library/alpine:3.20', 'missing:1', 'arista/ceos:4.32.1F'];
  const found = await docker.inspect(refs);
  assert.deepEqual(calls, [{ command: 'docker', args: ['image', 'inspect', 'arista/ceos:4.32.1F', 'nokia/srlinux:24.3', 'docker.io/library/alpine:3.20', 'missing:1'], timeoutMs: 5000 }]);
  assert.deepEqual([...found.keys()].sort(), ['arista/ceos:4.32.1F', 'docker.io/library/alpine:3.20']);
  assert.deepEqual(found.get('arista/ceos:4.32.1F'), { ref: 'arista/ceos:4.32.1F', id: ID, labels: { [DIGEST_LABEL]: DIGEST } });
  assert.deepEqual(found.get('docker.io/library/alpine:3.20')?.labels, {});
});

test('inspect: no refs, no process', async () => {
  const { runner, calls } = scripted(() => new Error('must not run'));
  assert.equal((await createEngine('docker', runner).inspect([])).size, 0);
  assert.equal(calls.length, 0);
});

test('inspect: a ref without a tag means :latest; a digest ref matches RepoDigests; podman ids get sha256:', async () => {
  const { runner } = scripted(() => ({
    stdout: JSON.stringify([
      dockerImage(['ceos:latest'], {}),
      { Id: '5'.repeat(64), RepoTags: ['localhost/arista/ceos:lab'], RepoDigests: [`localhost/arista/ceos@${REPO_DIGEST}`], Labels: { a: 'b' }, Config: { Labels: null } },
    ]),
    exitCode: 1,
    stderr: 'Error: inspecting object: other:1: image not known',
  }));
  const found = await createEngine('podman', runner).inspect(['ceos', `arista/ceos@${REPO_DIGEST}`, 'other:1']);
  assert.equal(found.get('ceos')?.id, ID);
  assert.deepEqual(found.get(`arista/ceos@${REPO_DIGEST}`), { ref: `arista/ceos@${REPO_DIGEST}`, id: `sha256:${'5'.repeat(64)}`, labels: { a: 'b' } });
  assert.equal(found.has('other:1'), false);
});

test('reference normalisation: docker short names, podman localhost/, docker.io forms', () => {
  const same = (a: string, b: string) => referenceKeys(a).some((k) => referenceKeys(b).includes(k));
  assert.ok(same('ceos:4.32', 'localhost/ceos:4.32'));
  assert.ok(same('ceos:4.32', 'docker.io/library/ceos:4.32'));
  assert.ok(same('ceos', 'ceos:latest'));
  assert.ok(same('arista/ceos:1', 'docker.io/arista/ceos:1'));
  assert.ok(same('arista/ceos:1', 'index.docker.io/arista/ceos:1'));
  assert.ok(same('docker.io/alpine:3', 'alpine:3'));
  assert.ok(same('registry.example.com:5000/ceos@sha256:abc', 'registry.example.com:5000/ceos:x@sha256:abc'));
  assert.ok(!same('ceos:4.32', 'ceos:4.33'));
  assert.ok(!same('arista/ceos:1', 'ceos:1'));
  assert.ok(!same('quay.io/ceos:1', 'ceos:1'));
  assert.ok(!same('localhost:5000/ceos:1', 'localhost/ceos:1'));
});

test('inspect: any other failure is E_ENGINE, even when some images were printed', async () => {
  const { runner } = scripted(() => ({ exitCode: 1, stdout: '[]', stderr: 'Error response from daemon: client version 1.52 is too new. Maximum supported API version is 1.43' }));
  await assert.rejects(createEngine('docker', runner).inspect(['a:1']), engineError((err) => {
    assert.match(err.message, /^docker image inspect failed: .*client version 1\.52 is too new/);
    assert.equal(err.details.engine, 'docker');
  }));
  const garbage = scripted(() => ({ stdout: 'not json' }));
  await assert.rejects(createEngine('docker', garbage.runner).inspect(['a:1']), engineError((err) => assert.match(err.message, /not a JSON array/)));
});

test('importRootfs: `docker import --change LABEL io.hoard.digest=<digest> <file> <ref>`, no query timeout, then inspect', async () => {
  const { runner, calls } = scripted((_, args) =>
    args[0] === 'import' ? { stdout: ID } : { stdout: JSON.stringify([dockerImage(['arista/ceos:4.32.1F'], { [DIGEST_LABEL]: DIGEST })]) },
  );
  const info = await createEngine('docker', runner).importRootfs('/store/blobs/sha256/x', 'arista/ceos:4.32.1F', DIGEST);
  assert.deepEqual(calls, [
    { command: 'docker', args: ['import', '--change', `LABEL io.hoard.digest=${DIGEST}`, '/store/blobs/sha256/x', 'arista/ceos:4.32.1F'], timeoutMs: undefined },
    { command: 'docker', args: ['image', 'inspect', 'arista/ceos:4.32.1F'], timeoutMs: 5000 },
  ]);
  assert.deepEqual(info, { ref: 'arista/ceos:4.32.1F', id: ID, labels: { [DIGEST_LABEL]: DIGEST } });
  // An optional long limit for imports, and a custom query limit.
  const timed = scripted((_, args) => (args[0] === 'import' ? {} : { stdout: JSON.stringify([dockerImage(['x:1'], {})]) }));
  await createEngine('docker', timed.runner, { importTimeoutMs: 600_000, queryTimeoutMs: 2000 }).importRootfs('/f', 'x:1', DIGEST);
  assert.deepEqual(timed.calls.map((c) => c.timeoutMs), [600_000, 2000]);
});

test('importRootfs: a failed import is E_ENGINE with the last meaningful stderr line', async () => {
  const { runner } = scripted(() => ({ exitCode: 1, stderr: 'time="2025-01-01T00:00:00Z" level=warning msg="x"\nError response from daemon: archive/tar: invalid tar header\n\n' }));
  await assert.rejects(createEngine('docker', runner).importRootfs('/f', 'x:1', DIGEST), engineError((err) => {
    assert.equal(err.message, 'docker import failed: Error response from daemon: archive/tar: invalid tar header');
    assert.equal(err.details.engine, 'docker');
    assert.equal(err.details.action, 'import');
  }));
});

test('load: `docker load -i <file>`, then `docker tag <loaded> <ref>`, then inspect', async () => {
  const { runner, calls } = scripted((_, args) => {
    if (args[0] === 'load') return { stdout: 'Loaded image: vendor/nos:24.1\nLoaded image: vendor/other:1\n' };
    if (args[0] === 'tag') return {};
    return { stdout: JSON.stringify([dockerImage(['vendor/nos:24.1', 'nos:lab'], null)]) };
  });
  const info = await createEngine('docker', runner).load('/f.tar', 'nos:lab');
  assert.deepEqual(calls.map((c) => c.args), [['load', '-i', '/f.tar'], ['tag', 'vendor/nos:24.1', 'nos:lab'], ['image', 'inspect', 'nos:lab']]);
  assert.deepEqual(calls.map((c) => c.timeoutMs), [undefined, 5000, 5000]);
  assert.deepEqual(info, { ref: 'nos:lab', id: ID, labels: {} });
});

test('load: an untagged archive is tagged by the id docker reports', async () => {
  const { runner, calls } = scripted((_, args) =>
    args[0] === 'load' ? { stdout: `Loaded image ID: ${ID}\n` } : args[0] === 'tag' ? {} : { stdout: JSON.stringify([dockerImage(['nos:lab'], null)]) },
  );
  await createEngine('docker', runner).load('/f.tar', 'nos:lab');
  assert.deepEqual(calls[1]?.args, ['tag', ID, 'nos:lab']);
  const silent = scripted(() => ({ stdout: 'nothing useful' }));
  await assert.rejects(createEngine('docker', silent.runner).load('/f.tar', 'nos:lab'), engineError((err) => assert.match(err.message, /did not say which image it loaded/)));
});

test('loadedImages reads both engines\' formats', () => {
  assert.deepEqual(loadedImages('Loaded image: a:1\nLoaded image ID: sha256:abc\nLoaded image(s): localhost/b:2,localhost/c:3\nnoise'), ['a:1', 'sha256:abc', 'localhost/b:2', 'localhost/c:3']);
});

test('daemon not running: one E_ENGINE error naming docker, with a hint to start it or pass --no-images', async () => {
  const { runner } = scripted(() => ({ exitCode: 1, stderr: DAEMON_DOWN }));
  await assert.rejects(createEngine('docker', runner).inspect(['a:1']), engineError((err) => {
    assert.match(err.message, /^docker: the docker daemon is not running/);
    assert.match(err.hint ?? '', /systemctl start docker/);
    assert.match(err.hint ?? '', /--no-images/);
    assert.equal(err.details.engine, 'docker');
  }));
});

test('docker not installed: E_ENGINE "docker is not installed", hint: install, --engine podman, --no-images', async () => {
  const { runner } = scripted(() => Object.assign(new Error('spawn docker ENOENT'), { code: 'ENOENT' }));
  await assert.rejects(createEngine('docker', runner).importRootfs('/f', 'x:1', DIGEST), engineError((err) => {
    assert.match(err.message, /^docker is not installed/);
    assert.match(err.hint ?? '', /install docker/);
    assert.match(err.hint ?? '', /--engine podman/);
    assert.match(err.hint ?? '', /--no-images/);
    assert.equal(err.details.engine, 'docker');
  }));
});

test('permission denied on docker.sock: E_ENGINE with a hint (docker group, podman, --no-images)', async () => {
  const { runner } = scripted(() => ({ exitCode: 1, stderr: PERMISSION_DENIED }));
  await assert.rejects(createEngine('docker', runner).inspect(['a:1']), engineError((err) => {
    assert.match(err.message, /permission denied/);
    assert.match(err.hint ?? '', /docker group/);
    assert.match(err.hint ?? '', /--engine podman/);
    assert.match(err.hint ?? '', /--no-images/);
  }));
});

test('a query that times out: E_ENGINE "did not answer within 5 s"', async () => {
  const { runner } = scripted(() => Object.assign(new Error('timed out'), { code: 'ETIMEDOUT', timedOut: true }));
  await assert.rejects(createEngine('docker', runner).inspect(['a:1']), engineError((err) => {
    assert.match(err.message, /^docker image inspect did not answer within 5 s$/);
    assert.match(err.hint ?? '', /--no-images/);
    assert.equal(err.details.timeoutMs, 5000);
  }));
});

const dockerDown = (command: string): Reply | undefined => (command === 'docker' ? { exitCode: 1, stderr: DAEMON_DOWN } : undefined);

test('selectEngine auto: docker answers → docker, podman never probed', async () => {
  const { runner, calls } = scripted(() => ({ stdout: '28.2.2\n' }));
  const engine = await selectEngine('auto', runner);
  assert.equal(engine.name, 'docker');
  assert.deepEqual(calls, [{ command: 'docker', args: ['version', '--format', '{{.Server.Version}}'], timeoutMs: 5000 }]);
});

test('selectEngine auto: docker daemon down → podman, each probed once', async () => {
  const { runner, calls } = scripted((command) => dockerDown(command) ?? { stdout: 'Version: 4.3.1\n' });
  const engine = await selectEngine('auto', runner, { queryTimeoutMs: 1500 });
  assert.equal(engine.name, 'podman');
  assert.deepEqual(calls, [
    { command: 'docker', args: ['version', '--format', '{{.Server.Version}}'], timeoutMs: 1500 },
    { command: 'podman', args: ['version'], timeoutMs: 1500 },
  ]);
  // The chosen engine runs podman from then on.
  await engine.inspect(['x:1']).catch(() => {});
  assert.equal(calls.at(-1)?.command, 'podman');
});

test('selectEngine auto: docker answers without a server version (client only) → not docker', async () => {
  const { runner } = scripted((command) => (command === 'docker' ? { stdout: '' } : { stdout: 'Version: 4.3.1' }));
  assert.equal((await selectEngine('auto', runner)).name, 'podman');
});

test('selectEngine auto: neither usable → one E_ENGINE naming both, with hints', async () => {
  const { runner, calls } = scripted((command) => dockerDown(command) ?? Object.assign(new Error('spawn podman ENOENT'), { code: 'ENOENT' }));
  await assert.rejects(selectEngine('auto', runner), engineError((err) => {
    assert.match(err.message, /no container engine is usable/);
    assert.match(err.message, /docker daemon is not running/);
    assert.match(err.message, /podman is not installed/);
    assert.match(err.hint ?? '', /--no-images/);
    assert.match(err.hint ?? '', /install podman/);
  }));
  assert.deepEqual(calls.map((c) => c.command), ['docker', 'podman']);
});

test('selectEngine docker|podman: that engine, no probe', async () => {
  const { runner, calls } = scripted(() => new Error('must not run'));
  assert.equal((await selectEngine('docker', runner)).name, 'docker');
  assert.equal((await selectEngine('podman', runner)).name, 'podman');
  assert.equal(calls.length, 0);
});

test('the real docker CLI against a socket that does not exist: E_ENGINE with --no-images in the hint', async () => {
  // With docker installed this is the daemon-down path, without it the not-installed path:
  // either way one clear error, through the real runner.
  const env = { ...process.env, DOCKER_HOST: 'unix:///nonexistent/hoard-test-docker.sock' };
  await assert.rejects(createEngine('docker', execaRunner, { env }).inspect(['hoard-test:1']), engineError((err) => {
    assert.match(err.message, /^docker(: the docker daemon is not running| is not installed)/);
    assert.match(err.hint ?? '', /--no-images/);
  }));
});

test('imageUsers and removeImage: the tags and containers of an image by id, `rmi` never forced, a refusal is one E_ENGINE error', async () => {
  const hex = ID.slice(7);
  const { runner, calls } = scripted((_command, args) => {
    if (args[0] === 'image') return args[2] === ID ? { stdout: JSON.stringify([dockerImage(['arista/ceos:keep'], { [DIGEST_LABEL]: DIGEST })]) } : { exitCode: 1, stderr: `Error response from daemon: No such image: ${args[2]}` };
    if (args[0] === 'ps') return { stdout: 'clab-lab-ceos1\nclab-lab-ceos2\n' };
    return { exitCode: 1, stderr: `Error response from daemon: conflict: unable to delete ${hex.slice(0, 12)} (cannot be forced) - image is being used by running container 0123456789ab` };
  });
  const engine = createEngine('docker', runner);
  assert.deepEqual(await engine.imageUsers(ID), { tags: ['arista/ceos:keep'], containers: ['clab-lab-ceos1', 'clab-lab-ceos2'] });
  // The container filter takes the full hex id (podman's matches neither `sha256:…` nor a short id).
  assert.deepEqual(calls.find((c) => c.args[0] === 'ps')!.args, ['ps', '--all', '--filter', `ancestor=${hex}`, '--format', '{{.Names}}']);
  assert.equal(await engine.imageUsers(`sha256:${'9'.repeat(64)}`), null, 'gone: no users to speak of');
  await assert.rejects(engine.removeImage(ID), engineError((err) => assert.match(err.message, /docker rmi failed: .*image is being used by running container/)));
  assert.deepEqual(calls.at(-1)!.args, ['rmi', ID], 'never --force');
});
