// Loopback static file server for the benchmark, run as its own process so it does not
// share the measured client's core:  node bench/server.mjs <root>
// Prints its port on stdout; exits when its stdin closes (that is, when the parent goes away).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const root = path.resolve(process.argv[2] ?? '.');

// /delay/<ms>/<path> serves <path> after waiting <ms> (a server far away, or a slow CDN).
const server = http.createServer((req, res) => {
  const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  const delayed = /^\/delay\/(\d+)(\/.*)$/.exec(pathname);
  if (delayed) setTimeout(() => serve(req, res, delayed[2]), Number(delayed[1]));
  else serve(req, res, pathname);
});

function serve(req, res, pathname) {
  const file = path.join(root, path.normalize(pathname));
  if ((req.method !== 'GET' && req.method !== 'HEAD') || !file.startsWith(root + path.sep)) {
    res.writeHead(404).end();
    return;
  }
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    fs.createReadStream(file, { highWaterMark: 4 << 20 })
      .on('error', () => res.destroy())
      .pipe(res);
  });
}

server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.stdin.on('end', () => process.exit(0)).resume();
