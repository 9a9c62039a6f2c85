#!/usr/bin/env node
// Line and branch coverage of src/ from c8's report (coverage/coverage-final.json), after
// `npm test`. c8 collects it from every process, the CLI's children included (their bundles'
// source maps lead back to src/*.ts); this keeps src/ only, adds the files no process loaded
// (at 0 %), prints the least covered first, and exits 1 below COVERAGE_MIN_LINES (80 %).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const min = Number(process.env.COVERAGE_MIN_LINES ?? 80);
const report = path.join(root, 'coverage', 'coverage-final.json');
if (!existsSync(report)) {
  console.error(`no ${path.relative(process.cwd(), report)}: run the tests under c8 first (npm test)`);
  process.exit(1);
}
const data = JSON.parse(readFileSync(report, 'utf8'));

/** Every source file of src/ that has code (not only types). */
function sources(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.tsx?$/.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

const rows = [];
for (const file of sources(path.join(root, 'src'))) {
  const cov = data[file];
  const rel = path.relative(root, file);
  if (!cov) {
    // Never loaded by any test: every line that is code counts as not covered.
    const code = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() && !/^\s*(\/\/|\*|\/\*|import |export (type|interface) )/.test(l)).length;
    rows.push({ rel, lines: [0, code], branches: [0, 0] });
    continue;
  }
  const lines = new Map();
  for (const [id, loc] of Object.entries(cov.statementMap)) {
    const line = loc.start.line;
    lines.set(line, (lines.get(line) ?? false) || cov.s[id] > 0);
  }
  let bCovered = 0;
  let bTotal = 0;
  for (const counts of Object.values(cov.b)) {
    bTotal += counts.length;
    bCovered += counts.filter((c) => c > 0).length;
  }
  rows.push({ rel, lines: [[...lines.values()].filter(Boolean).length, lines.size], branches: [bCovered, bTotal] });
}

const pct = ([a, b]) => (b === 0 ? 100 : (a / b) * 100);
const sum = (key) => rows.reduce(([a, b], r) => [a + r[key][0], b + r[key][1]], [0, 0]);
rows.sort((x, y) => pct(x.lines) - pct(y.lines) || x.rel.localeCompare(y.rel));
const w = Math.max(...rows.map((r) => r.rel.length));
console.log(`\ncoverage of src/ (lines, branches), least covered first:`);
for (const r of rows) console.log(`  ${r.rel.padEnd(w)}  ${pct(r.lines).toFixed(1).padStart(5)} %  ${pct(r.branches).toFixed(1).padStart(5)} %  (${r.lines[0]}/${r.lines[1]} lines)`);
const lines = sum('lines');
const branches = sum('branches');
console.log(`  ${'all of src/'.padEnd(w)}  ${pct(lines).toFixed(1).padStart(5)} %  ${pct(branches).toFixed(1).padStart(5)} %  (${lines[0]}/${lines[1]} lines)`);
if (pct(lines) < min) {
  console.error(`\nline coverage ${pct(lines).toFixed(1)} % is below ${min} %`);
  process.exit(1);
}
