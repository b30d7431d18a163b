/**
 * CPU profiles of the hops, for docs/benchmarks.md's "where the cost goes". With BENCH_CPU_PROFILE=<dir> set, the
 * benches profile the exactly-once contender's measured runs (the inspector's sampling profiler, the same
 * .cpuprofile that `node --cpu-prof` writes; the gateway child runs under `node --cpu-prof` itself) and print the
 * top self-time entries. Without it they run as usual.
 *
 *   BENCH_CPU_PROFILE=/tmp/prof npm run bench -- http amqp gateway peer
 *   npx tsx bench/profile.ts <file.cpuprofile> [top]      (summarise a profile)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BENCH_BUILD_DIR, REPO_ROOT } from './paths.js';

export const PROFILE_DIR = process.env.BENCH_CPU_PROFILE;
const ROOT = REPO_ROOT;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Runs `work` under the sampling profiler when BENCH_CPU_PROFILE is set; writes `<dir>/<name>.cpuprofile`. */
export async function profiled<T>(name: string, work: () => Promise<T>): Promise<T> {
  if (!PROFILE_DIR) return work();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  try {
    return await work();
  } finally {
    const { profile } = (await session.post('Profiler.stop')) as { profile: CpuProfile };
    session.disconnect();
    mkdirSync(PROFILE_DIR, { recursive: true });
    const path = join(PROFILE_DIR, `${name}.cpuprofile`);
    writeFileSync(path, JSON.stringify(profile));
    console.log(`\nCPU profile of ${name}: ${path}`);
    printSummary(profile);
  }
}

/** Where a function lives: a path in the repository, a package, node's own code, or V8's pseudo-entries. */
function place(url: string): string {
  if (!url) return '';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const packageAt = path.lastIndexOf('node_modules/');
  if (packageAt >= 0) {
    const rest = path.slice(packageAt + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? path);
  }
  if (path.startsWith('node:')) return path;
  // The compiled bench's files are named as their sources' output: src/core/processor.js.
  const base = path.startsWith(BENCH_BUILD_DIR) ? BENCH_BUILD_DIR : ROOT;
  return path.startsWith(base) ? relative(base, path) : path;
}

/** Self time per function and per place (package, source file, node internals, GC), top `top` of each. */
export function summarise(profile: CpuProfile, top = 15) {
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const idle = profile.nodes
    .filter((n) => n.callFrame.functionName === '(idle)')
    .reduce((sum, n) => sum + (self.get(n.id) ?? 0), 0);
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  const parent = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node);
  const label = (node: ProfileNode) => {
    const where = place(node.callFrame.url);
    const fn = node.callFrame.functionName || '(anonymous)';
    return where ? `${fn} ${where}:${node.callFrame.lineNumber + 1}` : fn;
  };
  for (const node of profile.nodes) {
    const t = self.get(node.id) ?? 0;
    if (t === 0 || node.callFrame.functionName === '(idle)') continue;
    const where = place(node.callFrame.url);
    const fn = node.callFrame.functionName || '(anonymous)';
    // Native code (a driver's binding, a socket write) is named by its JavaScript caller too.
    const caller = parent.get(node.id);
    // The profiler's own stop (it serialises the profile) is not the hop's.
    if (caller?.callFrame.url === 'node:inspector') continue;
    const native = !where && !fn.startsWith('(') && caller !== undefined;
    const key = native ? `${fn} (native) ← ${label(caller)}` : label(node);
    byFunction.set(key, (byFunction.get(key) ?? 0) + t);
    const callerPlace = native ? place(caller.callFrame.url) : '';
    const group = native
      ? `native, called from ${callerPlace.startsWith('node:') ? 'node internals' : callerPlace || 'native'}`
      : where
        ? where.startsWith('node:')
          ? 'node internals'
          : where.startsWith('src/') || where.startsWith('dist/') || where.startsWith('bench/')
            ? where
            : `package ${where}`
        : fn;
    byPlace.set(group, (byPlace.get(group) ?? 0) + t);
  }
  // Busy: every sample but the idle ones and the profiler's own.
  const busy = Math.max(
    1,
    [...byPlace.values()].reduce((sum, t) => sum + t, 0),
  );
  const rows = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([entry, t]) => ({
        'self %': ((100 * t) / busy).toFixed(1),
        'self ms': (t / 1000).toFixed(0),
        entry,
      }));
  return {
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    functions: rows(byFunction),
    places: rows(byPlace),
  };
}

export function printSummary(profile: CpuProfile, top = 15): void {
  const s = summarise(profile, top);
  console.log(
    `busy ${s.busyMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms; self time (% of busy) by function:`,
  );
  console.table(s.functions);
  console.log('by file or package:');
  console.table(s.places);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    console.error('usage: npx tsx bench/profile.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  printSummary(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, top ? Number(top) : 15);
}
