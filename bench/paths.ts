/**
 * Where the bench runs from. `npm run bench` compiles the benches and the code they measure with tsc (as the
 * package is built) and runs the output: tsx's transform wraps every function it creates in a `__name` call, a cost
 * per closure that production code does not pay. Run by hand (`npx tsx bench/<name>.ts`), the same files run from
 * source.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository: the nearest folder above this file that holds package.json (from source or from the build). */
export const REPO_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

/** Where `npm run bench` compiles to (tsconfig.bench.json's outDir; gitignored). */
export const BENCH_BUILD_DIR = join(REPO_ROOT, '.tmp', 'bench-build');

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/**
 * The node arguments that run a sibling file in the same way as this process runs: empty when compiled, tsx's
 * loader when from source. A bench's helper process (the load, a receiver, a baseline server) then runs the same
 * kind of code as the bench.
 */
export function runtimeArgs(): string[] {
  return process.execArgv.filter(
    (arg, i, all) => isLoaderFlag(arg) || LOADER_FLAGS.includes(all[i - 1] ?? ''),
  );
}

const LOADER_FLAGS = ['--import', '--require', '--loader', '--experimental-loader'];

function isLoaderFlag(arg: string): boolean {
  return LOADER_FLAGS.some((flag) => arg === flag || arg.startsWith(`${flag}=`));
}

/**
 * Compiles the benches and what they import into BENCH_BUILD_DIR; returns the compiled path of `benchFile`. tsc
 * still emits when the tree has a type error: the bench then runs what it emitted, as the gateway bench does.
 */
export function compileBenches(benchFile: string): string {
  const compiled = join(BENCH_BUILD_DIR, 'bench', benchFile.replace(/\.ts$/, '.js'));
  try {
    execFileSync(
      process.execPath,
      [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(REPO_ROOT, 'tsconfig.bench.json')],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (error) {
    if (!existsSync(compiled)) throw error;
    console.warn('tsc reported errors; the bench runs what it emitted:');
    console.warn(String((error as { stdout?: Buffer }).stdout ?? '').slice(0, 2_000));
  }
  return compiled;
}
