// Preloaded with `node --import` into a measured process: on exit, writes the process's
// peak resident set size (KiB, from getrusage) to $BENCH_RSS_FILE. Needs no GNU time.
import { writeFileSync } from 'node:fs';

process.on('exit', () => {
  if (process.env.BENCH_RSS_FILE) writeFileSync(process.env.BENCH_RSS_FILE, String(process.resourceUsage().maxRSS));
});
