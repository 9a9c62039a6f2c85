// Text from a manifest or a server reaches the terminal with its control characters escaped
// (ESC → the four characters \x1b), in a pipe too; --json stays JSON.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { hoard, jsonLines, project, startServer, type RunResult } from '../helpers.ts';

const ESC = '\x1b';

/** Any control character a terminal acts on: C0 but LF and TAB, DEL, C1 (as the printer escapes them). */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

function assertNoRawControl(r: RunResult, what: string): void {
  const all = r.stdout + r.stderr;
  const at = all.search(RAW_CONTROL);
  assert.equal(at, -1, `${what}: a raw control character (${JSON.stringify(all[at])}) reached the output:\n${JSON.stringify(all)}`);
}

/**
 * A raw HTTP/1.1 server on 127.0.0.1:0 that answers every request with `answer`, byte for byte
 * (node:http refuses to send control characters in a status line or a header).
 */
async function rawServer(t: TestContext, answer: Buffer): Promise<{ url: (p: string) => string; requests: () => number }> {
  let requests = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let head = '';
    sock.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      head = '';
      requests++;
      sock.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  const { port } = server.address() as net.AddressInfo;
  return { url: (p) => `http://127.0.0.1:${port}${p}`, requests: () => requests };
}

/** An answer built from latin1 text (so \x9b is the single byte 0x9b, a C1 CSI). */
const raw = (statusLine: string, headers: string[], body: string) =>
  Buffer.concat([
    Buffer.from(`${statusLine}\r\n${[...headers, `content-length: ${Buffer.byteLength(body, 'latin1')}`, 'connection: close'].join('\r\n')}\r\n\r\n`, 'latin1'),
    Buffer.from(body, 'latin1'),
  ]);

test('a file name from a URL with ESC, BEL and C1 in it (percent-decoded) never reaches the terminal raw, in a pipe', async (t) => {
  const srv = await startServer(t, {});
  const p = await project(t, { version: 1, artifacts: {} });
  // %1B]0;pwned%07 sets a terminal's title; %1B[2J clears the screen; %C2%9B is a C1 CSI.
  const url = srv.url('/%1B%5D0%3Bpwned%07%1B%5B2J%C2%9B31mimage.bin');
  const r = await p.run('add', url);
  assert.notEqual(r.code, 0, r.stderr);
  const all = r.stdout + r.stderr;
  assert.ok(!all.includes(ESC), `a raw ESC reached the terminal:\n${JSON.stringify(all)}`);
  assert.ok(!all.includes('\x07') && !all.includes('\x9b'), 'no BEL, no C1 CSI');
  assert.match(all, /\\x1b|\\u001b/, 'ESC is shown escaped');
  // --json: still one JSON value per line, with no raw ESC or C1 either.
  const j = await p.run('add', url, '--json');
  assert.ok(!j.stdout.includes(ESC) && !j.stdout.includes('\x9b'));
  assert.ok(jsonLines(j.stdout).length > 0);
});

test('an artifact name with ESC in hoard.json: the fatal error escapes it', async (t) => {
  const p = await project(t, `{"version": 1, "artifacts": {"a${'\\u001b'}[31mred": {"url": "http://127.0.0.1:9/a.bin"}}}`);
  const r = await p.run('status');
  assert.equal(r.code, 2, r.stderr);
  assert.ok(!(r.stdout + r.stderr).includes(ESC), JSON.stringify(r.stderr));
  assert.match(r.stderr, /a\\x1b\[31mred/);
});

test('hoard ui: events and errors reach the TUI with control characters escaped', async (t) => {
  const { createUiEngine } = await import('../../src/cli/ui.ts');
  const p = await project(t, `{"version": 1, "artifacts": {"a${'\\u001b'}]0;x${'\\u0007'}": {"url": "http://127.0.0.1:9/a.bin"}}}`);
  const g = { manifest: p.manifestPath, store: p.store, json: false, verbose: false, quiet: false, color: false };
  const engine = createUiEngine(g, {}, { jobs: 1, images: false, engine: 'auto' }, p.manifestPath);
  const seen: unknown[] = [];
  const r = await engine.status((e) => seen.push(e));
  assert.equal(r.code, 2);
  const text = JSON.stringify([r.error, seen]);
  assert.ok(!/\\u001b|\\u0007/.test(text), text);
  assert.match(r.error!.message, /a\\x1b\]0;x\\x07/);
});

// What a hostile server says: a title-setting OSC (ESC ] 0 ; … BEL), a screen clear, a bare CR
// that would overwrite the line, a C1 CSI. The word "pwned" marks server text.
const BODY = '\x1b]0;pwned\x07\x1b[2J pwned server says\r pwned overwritten \x9b31m pwned\n';
const ANSWERS: Array<[string, Buffer, RegExp]> = [
  [
    '404 with ESC, BEL and C1 in its reason phrase, a Content-Disposition file name (C1, and ESC/BEL percent-encoded) and its body',
    raw('HTTP/1.1 404 Not \x1b]0;pwned\x07 Found\x9b', ['content-type: text/plain', `content-disposition: attachment; filename="pwned\x9b31m.bin"; filename*=UTF-8''pwned%1B%5B31m%07%0D.bin`], BODY),
    /HTTP 404/,
  ],
  [
    '503 (retried, then given up) with the same reason phrase and body',
    raw('HTTP/1.1 503 Busy \x1b]0;pwned\x07\x9b', ['content-type: text/plain'], BODY),
    /HTTP 503/,
  ],
  [
    'a raw ESC and BEL in a Content-Disposition header (not HTTP: refused by the parser)',
    raw('HTTP/1.1 200 OK', ['content-disposition: attachment; filename="pwned\x1b[2J\x07.bin"'], BODY),
    /does not match the HTTP\/1\.1 protocol/,
  ],
  [
    'a bare CR in the reason phrase (not HTTP: refused by the parser)',
    raw('HTTP/1.1 404 Gone\rpwned', [], BODY),
    /does not match the HTTP\/1\.1 protocol/,
  ],
];

for (const [what, answer, said] of ANSWERS) {
  test(`a server answer: ${what}: hoard prints none of the server's text, and no raw control character, in a pipe`, async (t) => {
    const srv = await rawServer(t, answer);
    const p = await project(t, { version: 1, artifacts: { x: { url: srv.url('/x.bin') } } });
    // The file name a URL decodes to is the URL's text, not the server's: "title" marks it.
    const hostileName = srv.url('/%1B%5D0%3Btitle%07%0D%C2%9Bx.bin');
    const runs: Array<[string, RunResult]> = [
      ['sync', await p.run('sync', '--no-images')],
      ['sync -v', await p.run('sync', '--no-images', '-v')],
      ['fetch', await p.run('fetch', srv.url('/x.bin'))],
      ['fetch of a URL whose file name decodes to ESC, BEL, CR, C1', await hoard(['fetch', hostileName], { cwd: p.dir, store: p.store })],
    ];
    for (const [label, r] of runs) {
      assert.equal(r.code, 1, `${label}: ${r.stderr}`);
      assert.match(r.stderr, said, label);
      assertNoRawControl(r, label);
      // hoard names the URL and the status; it prints nothing the server wrote (body, reason
      // phrase, Content-Disposition), escaped or not.
      assert.doesNotMatch(r.stdout + r.stderr, /pwned/, `${label}: server text was printed`);
    }
    assert.match(runs[3]![1].stdout + runs[3]![1].stderr, /title/, 'fetch shows the file name it made of the URL');
    const j = await p.run('sync', '--no-images', '--json');
    assert.equal(j.code, 1);
    assertNoRawControl(j, 'sync --json');
    assert.doesNotMatch(j.stdout, /pwned/);
    const failed = jsonLines(j.stdout).find((e) => e.type === 'artifact');
    assert.match(String((failed?.error as { code?: string })?.code), /^E_(HTTP|NETWORK)$/);
    assert.ok(srv.requests() > 0, 'the server was asked');
  });
}

test('a server message hoard does print (Arista\'s API refusing the token): its ESC, BEL, CR and C1 are shown escaped, in a pipe', async (t) => {
  const message = '\x1b]0;pwned\x07\x1b[2J\rtoken \x9b31mdenied';
  const srv = await startServer(t, {
    '/custom_data/api/cvp/getSessionCode/': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: { message } }));
    },
  });
  const p = await project(t, { version: 1, artifacts: {} });
  const env = { HOARD_ARISTA_URL: srv.origin, ARISTA_TOKEN: 'not-a-real-token' };
  const r = await hoard(['add', 'arista:cEOS@4.32.1F', '--no-images'], { cwd: p.dir, store: p.store, env });
  assert.notEqual(r.code, 0, r.stderr);
  assert.equal(srv.hits.get('/custom_data/api/cvp/getSessionCode/'), 1, 'the API was asked');
  assertNoRawControl(r, 'add');
  // The server's words are there, each control character as \xHH.
  assert.ok(r.stderr.includes('\\x1b]0;pwned\\x07\\x1b[2J\\x0dtoken \\x9b31mdenied'), r.stderr);
  const j = await hoard(['add', 'arista:cEOS@4.32.1F', '--no-images', '--json'], { cwd: p.dir, store: p.store, env });
  assert.ok(!j.stdout.includes(ESC) && !j.stdout.includes('\x9b') && !j.stdout.includes('\x07'), JSON.stringify(j.stdout));
  assert.ok(jsonLines(j.stdout).some((e) => e.type === 'error'));
});
