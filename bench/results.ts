/**
 * What one `npm run bench` measured, kept as it prints: every table, and the issue's target rows (a figure, the
 * ratio or value it is judged on, the target and whether it was met). Written as JSON at the end of the run
 * (bench/run.ts) so that two runs can be compared (bench/compare.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname } from 'node:path';

/** One target of the bench: `value` judged against `target` with `op`. */
export interface TargetRow {
  /** Stable key, the same in every run: what bench/compare.ts matches on (e.g. `amqp.sqlite.throughput`). */
  id: string;
  /** What is measured, for a reader. */
  title: string;
  /** The figures behind the value, as printed (e.g. `2849 vs 4019 msgs/s; p99 54 vs 26 ms`). */
  figure: string;
  /** A ratio (Tollgate / baseline) or an absolute value in `unit`. */
  value: number;
  unit: 'ratio' | 'MB' | 'ms';
  op: '>=' | '<=';
  target: number;
  met: boolean;
}

export interface Machine {
  cpus: number;
  model: string;
  memoryGb: number;
  node: string;
  platform: string;
}

export interface BenchResults {
  /** `git rev-parse --short HEAD`, with `-dirty` when the work tree had changes. */
  commit: string;
  startedAt: string;
  finishedAt: string;
  /** The benches run (`core`, `amqp`, ...). */
  benches: string[];
  machine: Machine;
  targets: TargetRow[];
  tables: Array<{ title: string; rows: Array<Record<string, string | number>> }>;
  /** Free-form figures a bench prints outside its tables (ratios without a target, RSS). */
  notes: string[];
}

const targets: TargetRow[] = [];
const tables: BenchResults['tables'] = [];
const notes: string[] = [];

/** Records a target row and prints it as one line. */
export function recordTarget(row: Omit<TargetRow, 'met'>): TargetRow {
  const met = row.op === '>=' ? row.value >= row.target : row.value <= row.target;
  const full = { ...row, met };
  targets.push(full);
  console.log(targetLine(full));
  return full;
}

export function recordTable(title: string, rows: Array<Record<string, string | number>>): void {
  tables.push({ title, rows });
}

export function recordNote(line: string): void {
  notes.push(line);
}

/** Takes in what a bench process recorded (bench/one.ts), without printing it again: it printed as it ran. */
export function absorb(part: Pick<BenchResults, 'targets' | 'tables' | 'notes'>): void {
  targets.push(...part.targets);
  tables.push(...part.tables);
  notes.push(...part.notes);
}

export const targetLine = (row: TargetRow) =>
  `${row.met ? 'MET    ' : 'NOT MET'}  ${row.title}: ${formatValue(row)} (target ${row.op} ${row.target}${
    row.unit === 'ratio' ? '' : ` ${row.unit}`
  }); ${row.figure}`;

export const formatValue = (row: Pick<TargetRow, 'value' | 'unit'>) =>
  row.unit === 'ratio' ? `${row.value.toFixed(2)}x` : `${row.value.toFixed(1)} ${row.unit}`;

export function machine(): Machine {
  const all = cpus();
  return {
    cpus: all.length,
    model: all[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

export function sourceCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync(
      'git',
      ['status', '--porcelain', '--untracked-files=no', '--', 'src', 'bench'],
      {
        encoding: 'utf8',
      },
    ).trim();
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

export function collected(run: { commit: string; startedAt: Date; benches: string[] }): BenchResults {
  return {
    commit: run.commit,
    startedAt: run.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    benches: run.benches,
    machine: machine(),
    targets: [...targets],
    tables: [...tables],
    notes: [...notes],
  };
}

export function writeResults(path: string, results: BenchResults): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
}

/** The summary at the end of a run: every target row, met or not. */
export function printTargets(rows: readonly TargetRow[]): void {
  console.log('\nTargets (issue 16)');
  for (const row of rows) console.log(targetLine(row));
  const met = rows.filter((row) => row.met).length;
  console.log(`${met} of ${rows.length} targets met`);
}
