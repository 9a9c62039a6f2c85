// Servers on 127.0.0.1 that misbehave on purpose: resets, stalls, 503s, servers that ignore
// Range or change the file between attempts, wrong mirrors, redirects to other origins, proxies.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { CLI, hoard, startHoard, jsonLines, listTree, project, randomData, serveRoute, sha256, startServer, type Route } from '../helpers.ts';

/** Fast retries for tests: the backoff itself is not what they test. */
const FAST = ['--retry-delay', '0.02'];

function blobFile(store: string, hex: string): string {
  return path.join(store, 'v1', 'blobs', 'sha256', hex);
}

/** Bytes of response bodies the server wrote, over all requests. */
function countBytes(res: http.ServerResponse, into: { bytes: number }): void {
  const write = res.write.bind(res) as (...a: unknown[]) => boolean;
  const end = res.end.bind(res) as (...a: unknown[]) => http.ServerResponse;
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (Buffer.isBuffer(chunk)) into.bytes += chunk.length;
    return write(chunk, ...rest);
  }) as typeof res.write;
  res.end = ((chunk: unknown, ...rest: unknown[]) => {
    if (Buffer.isBuffer(chunk)) into.bytes += chunk.length;
    return end(chunk, ...rest);
  }) as typeof res.end;
}

test('a connection dropped twice mid-body completes by resuming: the server sends less than 1.5x the file', async (t) => {
  const data = randomData(4_000_000);
  const hex = sha256(data);
  const served = { bytes: 0 };
  const ranges: Array<string | undefined> = [];
  const file: Route = { body: data, ranges: true, headers: { etag: '"v1"' } };
  const srv = await startServer(t, {
    '/ceos.tar.xz': (req, res, hit) => {
      ranges.push(req.headers.range);
      countBytes(res, served);
      // The first two answers break off after 1.2 MB of what they send.
      serveRoute(req, res, hit <= 2 ? { ...file, dropAfter: 1_200_000 } : file);
    },
  });
  const p = await project(t, { version: 1, artifacts: { ceos: { url: srv.url('/ceos.tar.xz'), digest: `sha256:${hex}`, size: data.length } } });
  const r = await p.run('sync', ...FAST, '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'ceos.tar.xz')), data);
  assert.deepEqual(ranges, [undefined, 'bytes=1200000-', 'bytes=2400000-']);
  assert.ok(served.bytes < 1.5 * data.length, `served ${served.bytes} bytes for a ${data.length}-byte file`);
  const retries = jsonLines(r.stdout).filter((e) => e.type === 'retry');
  assert.equal(retries.length, 2);
  assert.deepEqual(await listTree(path.join(p.store, 'v1', 'tmp')), [], 'the partial file is gone once the blob is published');
});

test('503 with Retry-After: the wait is the server\'s, then the download completes', async (t) => {
  const data = randomData(50_000);
  const times: number[] = [];
  const srv = await startServer(t, {
    '/img.qcow2': (req, res, hit) => {
      times.push(Date.now());
      if (hit === 1) res.writeHead(503, { 'retry-after': '1', 'content-length': '4' }).end('busy');
      else serveRoute(req, res, { body: data });
    },
  });
  const p = await project(t, { version: 1, artifacts: { img: { url: srv.url('/img.qcow2') } } });
  const r = await p.run('sync', '--retry-delay', '0', '-v');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(times.length, 2);
  assert.ok(times[1]! - times[0]! >= 950, `retried after ${times[1]! - times[0]!} ms, Retry-After said 1 s`);
  assert.match(r.stderr, /retry img: attempt 1 failed \(GET .*HTTP 503\); trying again in 1\.0 s, 4 retries left/);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'img.qcow2')), data);
});

test('408, 429 and 5xx are retried up to --retries; other 4xx are not retried at all', async (t) => {
  const srv = await startServer(t, {
    '/flaky.bin': (_req, res) => res.writeHead(500, { 'content-length': '0' }).end(),
    '/slow.bin': (_req, res) => res.writeHead(429, { 'content-length': '0' }).end(),
    '/gone.bin': (_req, res) => res.writeHead(404, { 'content-length': '0' }).end(),
    '/denied.bin': (_req, res) => res.writeHead(403, { 'content-length': '0' }).end(),
  });
  const p = await project(t, {
    version: 1,
    artifacts: {
      flaky: { url: srv.url('/flaky.bin') }, slow: { url: srv.url('/slow.bin') },
      gone: { url: srv.url('/gone.bin') }, denied: { url: srv.url('/denied.bin') },
    },
  });
  const before = await fs.readFile(p.manifestPath);
  const r = await p.run('sync', ...FAST, '--retries', '2');
  assert.equal(r.code, 1);
  assert.equal(srv.hits.get('/flaky.bin'), 3);
  assert.equal(srv.hits.get('/slow.bin'), 3);
  assert.equal(srv.hits.get('/gone.bin'), 1);
  assert.equal(srv.hits.get('/denied.bin'), 1);
  assert.match(r.stderr, /flaky\.bin: HTTP 500/);
  assert.deepEqual(await fs.readFile(p.manifestPath), before);
});

test('a server that ignores Range: the download starts over from the 200 and is correct', async (t) => {
  const data = randomData(3_000_000);
  const hex = sha256(data);
  const asked: Array<string | undefined> = [];
  const srv = await startServer(t, {
    '/vmdk': (req, res, hit) => {
      asked.push(req.headers.range);
      serveRoute(req, res, { body: data, headers: { etag: '"same"' }, ...(hit === 1 ? { dropAfter: 1_000_000 } : {}) });
    },
  });
  const p = await project(t, { version: 1, artifacts: { disk: { url: srv.url('/vmdk'), path: 'disk.vmdk', digest: `sha256:${hex}`, size: data.length } } });
  const r = await p.run('sync', ...FAST);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(asked, [undefined, 'bytes=1000000-'], 'it asked to resume; the server sent everything instead');
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'disk.vmdk')), data);
});

test('the file changed between attempts (another ETag): If-Range makes the server send the new file whole', async (t) => {
  // An unlocked entry: no digest would catch a mix of the old file's start and the new one's end.
  const v1 = randomData(2_000_000);
  const v2 = randomData(2_000_000);
  const ifRange: Array<string | undefined> = [];
  const srv = await startServer(t, {
    '/latest.iso': (req, res, hit) => {
      ifRange.push(req.headers['if-range'] as string | undefined);
      if (hit === 1) serveRoute(req, res, { body: v1, ranges: true, headers: { etag: '"v1"' }, dropAfter: 800_000 });
      else serveRoute(req, res, { body: v2, ranges: true, headers: { etag: '"v2"' } });
    },
  });
  const p = await project(t, { version: 1, artifacts: { iso: { url: srv.url('/latest.iso') } } });
  const r = await p.run('sync', ...FAST);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(ifRange, [undefined, '"v1"']);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'latest.iso')), v2);
  const doc = JSON.parse(await fs.readFile(p.manifestPath, 'utf8'));
  assert.equal(doc.artifacts.iso.digest, `sha256:${sha256(v2)}`);
});

test('a stalled body times out (--stall-timeout) and the retry resumes where it stopped', async (t) => {
  const data = randomData(1_000_000);
  const ranges: Array<string | undefined> = [];
  const file: Route = { body: data, ranges: true, headers: { 'last-modified': 'Tue, 03 Nov 2026 10:00:00 GMT' } };
  const srv = await startServer(t, {
    '/stall.bin': (req, res, hit) => {
      ranges.push(req.headers.range);
      if (hit > 1) return serveRoute(req, res, file);
      res.writeHead(200, { 'content-length': String(data.length), ...file.headers });
      res.write(data.subarray(0, 300_000)); // ...and then nothing, connection open
    },
  });
  const p = await project(t, { version: 1, artifacts: { s: { url: srv.url('/stall.bin'), digest: `sha256:${sha256(data)}` } } });
  const started = Date.now();
  const r = await p.run('sync', ...FAST, '--stall-timeout', '0.5', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Date.now() - started < 20_000);
  const retry = jsonLines(r.stdout).find((e) => e.type === 'retry');
  assert.match(String(retry?.message), /stalled/);
  assert.deepEqual(ranges, [undefined, 'bytes=300000-']);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'stall.bin')), data);
});

test('a partial download survives the process: the next sync resumes it (If-Range with the Last-Modified it saw)', async (t) => {
  const data = randomData(2_000_000);
  const hex = sha256(data);
  const asked: Array<{ range?: string; ifRange?: string }> = [];
  const lastModified = 'Tue, 03 Nov 2026 10:00:00 GMT';
  const srv = await startServer(t, {
    '/a.bin': (req, res, hit) => {
      asked.push({ range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined });
      serveRoute(req, res, { body: data, ranges: true, headers: { 'last-modified': lastModified }, ...(hit === 1 ? { dropAfter: 1_500_000 } : {}) });
    },
  });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin') } } });
  const first = await p.run('sync', '--retries', '0');
  assert.equal(first.code, 1);
  const second = await p.run('sync', '-v');
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /resuming at 1\.4 MiB/);
  assert.deepEqual(asked, [{ range: undefined, ifRange: undefined }, { range: 'bytes=1500000-', ifRange: lastModified }]);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'a.bin')), data);
  assert.equal(JSON.parse(await fs.readFile(p.manifestPath, 'utf8')).artifacts.a.digest, `sha256:${hex}`);
});

test('wrong bytes from the first mirror: a warning, and the next mirror serves the file', async (t) => {
  const data = randomData(100_000);
  const bad = await startServer(t, { '/x.bin': randomData(100_000) });
  const good = await startServer(t, { '/x.bin': data });
  const p = await project(t, {
    version: 1,
    artifacts: { x: { url: bad.url('/x.bin'), mirrors: [good.url('/x.bin')], digest: `sha256:${sha256(data)}`, size: data.length } },
  });
  const r = await p.run('sync', ...FAST);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: x: .*127\.0\.0\.1:\d+\/x\.bin sent other bytes than expected: digest mismatch.*trying the next mirror/);
  assert.equal(bad.hits.get('/x.bin'), 1, 'wrong bytes are not a reason to ask the same server again');
  assert.equal(good.hits.get('/x.bin'), 1);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'x.bin')), data);
});

test('a redirect to another origin: the token went to the first only, and appears nowhere in output or manifest', async (t) => {
  const data = randomData(10_000);
  const token = 's3cr3t-token-4f9a';
  const cdn = await startServer(t, { '/blob/x.tar.xz': data });
  const origin = await startServer(t, {
    '/x.tar.xz': (_req, res) => res.writeHead(302, { location: cdn.url('/blob/x.tar.xz?sig=abc'), 'content-length': '0' }).end(),
  });
  const p = await project(t, {
    version: 1,
    artifacts: { x: { url: origin.url('/x.tar.xz'), headers: { Authorization: 'Bearer ${VENDOR_TOKEN}' } } },
  });
  const r = await hoard(['sync', '-v'], { cwd: p.dir, store: p.store, env: { VENDOR_TOKEN: token } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(origin.log[0]?.headers.authorization, `Bearer ${token}`);
  assert.equal(cdn.log.length, 1);
  assert.equal(cdn.log[0]?.headers.authorization, undefined, 'the token leaked to the other origin');
  const json = await hoard(['sync', '--force', '--json', '-v'], { cwd: p.dir, store: p.store, env: { VENDOR_TOKEN: token } });
  for (const text of [r.stdout, r.stderr, json.stdout, json.stderr, await fs.readFile(p.manifestPath, 'utf8')]) {
    assert.ok(!text.includes(token), 'the token is printed or recorded');
  }
});

test('the token stays out of error messages and --verbose output when the download fails', async (t) => {
  const token = 'tok-91b2-secret';
  const srv = await startServer(t, { '/x.bin': (_req, res) => res.writeHead(401, { 'content-length': '0' }).end() });
  const p = await project(t, { version: 1, artifacts: { x: { url: `${srv.url('/x.bin')}?token=${token}`, headers: { 'X-Auth': '${T}' } } } });
  const r = await hoard(['sync', '-v', ...FAST], { cwd: p.dir, store: p.store, env: { T: token } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /HTTP 401/);
  assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token));
});

/** A proxy on loopback: CONNECT tunnels (what undici uses, for http and https) and plain forwarding. */
async function startProxy(t: TestContext): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const target = new URL(req.url!);
    const up = http.request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  server.on('connect', (req, socket, head) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = req.url!.split(':');
    const up = net.connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

test('HTTP_PROXY: the request goes through the proxy; NO_PROXY skips it', async (t) => {
  const data = randomData(200_000);
  const srv = await startServer(t, { '/a.bin': data, '/b.bin': data });
  const proxy = await startProxy(t);
  const host = new URL(srv.origin).host;
  const a = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin') } } });
  const r = await hoard(['sync'], { cwd: a.dir, store: a.store, env: { HTTP_PROXY: proxy.url, http_proxy: undefined, NO_PROXY: '', no_proxy: undefined } });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(proxy.seen.some((s) => s.includes(host)), `the proxy saw: ${proxy.seen.join(', ')}`);
  assert.deepEqual(await fs.readFile(path.join(a.dir, 'artifacts', 'a.bin')), data);

  proxy.seen.length = 0;
  const b = await project(t, { version: 1, artifacts: { b: { url: srv.url('/b.bin') } } });
  const direct = await hoard(['sync'], { cwd: b.dir, store: b.store, env: { http_proxy: proxy.url, HTTP_PROXY: undefined, NO_PROXY: '127.0.0.1', no_proxy: undefined } });
  assert.equal(direct.code, 0, direct.stderr);
  assert.deepEqual(proxy.seen, []);
  assert.equal(srv.hits.get('/b.bin'), 1);
});

/** The furthest checkpoint any partial download's meta file in the store records (0: none). */
async function checkpointed(store: string): Promise<number> {
  const tmp = path.join(store, 'v1', 'tmp');
  let best = 0;
  for (const n of (await fs.readdir(tmp).catch(() => [] as string[])).filter((f) => f.endsWith('.partial.json'))) {
    try {
      const m = JSON.parse(await fs.readFile(path.join(tmp, n), 'utf8')) as { checkpoints?: Array<[number, string]> };
      best = Math.max(best, m.checkpoints?.at(-1)?.[0] ?? 0);
    } catch {
      // gone or being replaced: look again
    }
  }
  return best;
}

test('kill -9 at random moments during one download: no wrong blob, no blocking lock, and the last run resumes and finishes', async (t) => {
  const size = 24 * 1024 * 1024;
  const data = randomData(size);
  const hex = sha256(data);
  const served = { bytes: 0 };
  // A server that sends 256 KiB every 10 ms (~25 MB/s), with Range support.
  const srv = await startServer(t, {
    '/big.img': (req, res) => {
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = range && req.headers['if-range'] === '"big"' ? Number(range[1]) : 0;
      res.writeHead(start > 0 ? 206 : 200, {
        'content-length': String(size - start), etag: '"big"',
        ...(start > 0 ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}),
      });
      let at = start;
      const timer = setInterval(() => {
        const end = Math.min(size, at + 256 * 1024);
        served.bytes += end - at;
        res.write(data.subarray(at, end));
        at = end;
        if (at >= size) {
          clearInterval(timer);
          res.end();
        }
      }, 10);
      res.on('close', () => clearInterval(timer));
    },
  });
  const p = await project(t, { version: 1, artifacts: { big: { url: srv.url('/big.img'), digest: `sha256:${hex}`, size } } });
  for (let i = 0; i < 4; i++) {
    const before = served.bytes;
    const run = startHoard(['sync'], { cwd: p.dir, store: p.store });
    // Killed only once this run has been sent bytes (a kill before any byte, on a loaded
    // machine, would test nothing), then at a random moment within the next few chunks.
    while (served.bytes <= before) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 60));
    // The last kill comes once the partial file's meta vouches for more bytes than before (a
    // checkpoint): only a proven prefix is resumed, so the next run can resume from it.
    if (i === 3) {
      const had = await checkpointed(p.store);
      while ((await checkpointed(p.store)) <= had && run.child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    run.child.kill('SIGKILL');
    await run.done;
    const blob = await fs.readFile(blobFile(p.store, hex)).catch(() => null);
    assert.ok(blob === null || sha256(blob) === hex, `after kill ${i + 1} a blob does not match its name`);
  }
  const r = await p.run('sync', '--json');
  assert.equal(r.code, 0, r.stderr);
  const download = jsonLines(r.stdout).find((e) => e.type === 'download');
  if (download) assert.ok(Number(download.resumeFrom) > 0, 'the last run started from zero');
  assert.equal(sha256(await fs.readFile(blobFile(p.store, hex))), hex);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'big.img')), data);
  assert.ok(served.bytes < 2 * size, `served ${served.bytes} bytes for ${size}: the kills restarted from zero`);
  for (const f of await listTree(path.join(p.store, 'v1', 'blobs', 'sha256'))) {
    assert.equal(sha256(await fs.readFile(blobFile(p.store, f))), f);
  }
});

test('--no-store: a dropped connection is retried straight into the output, which ends up whole and verified', async (t) => {
  const data = randomData(3_000_000);
  const locked = randomData(2_000_000);
  const srv = await startServer(t, {
    // Not locked: the retry cannot resume (no digest to check a join), so it starts over.
    '/a.bin': (req, res, hit) => serveRoute(req, res, { body: data, ranges: true, ...(hit === 1 ? { dropAfter: 1_000_000 } : {}) }),
    // Locked: the retry asks for the rest only.
    '/b.bin': (req, res, hit) => serveRoute(req, res, { body: locked, ranges: true, ...(hit === 1 ? { dropAfter: 700_000 } : {}) }),
  });
  const p = await project(t, {
    version: 1,
    artifacts: { a: { url: srv.url('/a.bin') }, b: { url: srv.url('/b.bin'), digest: `sha256:${sha256(locked)}`, size: locked.length } },
  });
  const r = await p.run('sync', '--no-store', ...FAST);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'a.bin')), data);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'b.bin')), locked);
  assert.deepEqual(srv.log.filter((l) => l.path === '/b.bin').map((l) => l.headers.range), [undefined, 'bytes=700000-']);
  assert.deepEqual(await listTree(p.dir), ['artifacts', 'artifacts/a.bin', 'artifacts/b.bin', 'hoard.json']);
});
