/**
 * npm run bench:compare -- <before.json> <after.json>
 * Prints each target row of two `npm run bench` results side by side: the value before and after, its change, and
 * whether it met its target in each run. Rows present in only one run are listed as such.
 */
import { readFileSync } from 'node:fs';
import { type BenchResults, formatValue, type TargetRow } from './results.js';

function load(path: string): BenchResults {
  return JSON.parse(readFileSync(path, 'utf8')) as BenchResults;
}

const describe = (r: BenchResults) =>
  `${r.commit}, ${r.startedAt}, ${r.machine.cpus} × ${r.machine.model}, Node ${r.machine.node}`;

/** The change from a to b; positive means better, whichever way the target points. */
function change(a: TargetRow, b: TargetRow): string {
  if (a.value === 0) return 'n/a';
  const relative = (b.value - a.value) / a.value;
  const better = a.op === '>=' ? relative > 0 : relative < 0;
  const sign = relative >= 0 ? '+' : '';
  return `${sign}${(relative * 100).toFixed(1)}% ${Math.abs(relative) < 0.005 ? '' : better ? '(better)' : '(worse)'}`.trim();
}

const [beforePath, afterPath] = process.argv.slice(2);
if (!beforePath || !afterPath) {
  console.error('usage: npm run bench:compare -- <before.json> <after.json>');
  process.exit(2);
}
const before = load(beforePath);
const after = load(afterPath);
console.log(`before: ${describe(before)}\nafter:  ${describe(after)}`);
if (before.machine.cpus !== after.machine.cpus || before.machine.model !== after.machine.model)
  console.log('(different machines: compare the ratios, not the absolute figures)');

const mark = (row: TargetRow | undefined) => (row === undefined ? '' : row.met ? 'met' : 'not met');
const byId = (rows: TargetRow[]) => new Map(rows.map((row) => [row.id, row]));
const a = byId(before.targets);
const b = byId(after.targets);
const ids = [...new Set([...a.keys(), ...b.keys()])];
console.table(
  ids.map((id) => {
    const x = a.get(id);
    const y = b.get(id);
    const row = (y ?? x) as TargetRow;
    return {
      target: `${row.title} (${row.op} ${row.target}${row.unit === 'ratio' ? '' : ` ${row.unit}`})`,
      before: x ? `${formatValue(x)} ${mark(x)}` : '—',
      after: y ? `${formatValue(y)} ${mark(y)}` : '—',
      change: x && y ? change(x, y) : x ? 'only before' : 'only after',
    };
  }),
);
