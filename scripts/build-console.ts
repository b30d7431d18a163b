/**
 * npm run build:console — bundles the console (console/src, Preact and Cytoscape) with esbuild into dist/console:
 * index.html, assets/app-<hash>.js and assets/app-<hash>.css, and the chunks the app fetches later (the graph's
 * Cytoscape and dagre, only when a conversation opens), each with a .gz twin the gateway serves to browsers that
 * accept gzip. Prints every file's size and gzipped size, the gzipped JavaScript of the first load and of all
 * chunks, and fails when the first load exceeds the budget (300 KB of gzipped JavaScript).
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const SOURCE = join(ROOT, 'console');
export const CONSOLE_DIST = join(ROOT, 'dist', 'console');
export const JS_BUDGET_GZIP_BYTES = 300 * 1024;

export interface BuiltFile {
  /** Relative to the output directory: `index.html`, `assets/app-XXXX.js`. */
  path: string;
  bytes: number;
  gzipBytes: number;
}

export interface ConsoleBuild {
  outDir: string;
  files: BuiltFile[];
  /** Gzipped JavaScript the page loads before it shows anything: the entry and what it imports statically. */
  firstLoadJsGzipBytes: number;
  /** Gzipped JavaScript of every chunk, the lazily loaded ones included. */
  jsGzipBytes: number;
}

/** Builds the console into `outDir` (emptied first, so no stale hashed asset stays behind). */
export async function buildConsole(outDir: string = CONSOLE_DIST): Promise<ConsoleBuild> {
  rmSync(outDir, { recursive: true, force: true });
  const assets = join(outDir, 'assets');
  mkdirSync(assets, { recursive: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { app: join(SOURCE, 'src', 'main.tsx') },
    outdir: assets,
    entryNames: '[name]-[hash]',
    chunkNames: '[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome109', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: join(SOURCE, 'tsconfig.json'),
    minify: true,
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = result.metafile.outputs;
  const paths = Object.keys(outputs);
  const script = paths.find((path) => outputs[path]?.entryPoint !== undefined && path.endsWith('.js'));
  const style = paths.find((path) => path.endsWith('.css'));
  if (!script || !style)
    throw new Error(`esbuild produced no entry script or no stylesheet: ${paths.join(', ')}`);
  const firstLoad = staticClosure(script, outputs);

  const html = readFileSync(join(SOURCE, 'index.html'), 'utf8')
    .replace('{{app.js}}', basename(script))
    .replace('{{app.css}}', basename(style));
  writeFileSync(join(outDir, 'index.html'), html);

  const built = [join(outDir, 'index.html'), ...paths.map((path) => resolve(ROOT, path))];
  const files = built.map((path): BuiltFile => {
    const content = readFileSync(path);
    const gzip = gzipSync(content, { level: 9 });
    writeFileSync(`${path}.gz`, gzip);
    return { path: relative(outDir, path), bytes: statSync(path).size, gzipBytes: gzip.length };
  });
  const gzipOf = (path: string) =>
    files.find((f) => f.path === relative(outDir, resolve(ROOT, path)))?.gzipBytes ?? 0;
  const js = paths.filter((path) => path.endsWith('.js'));
  return {
    outDir,
    files,
    firstLoadJsGzipBytes: [...firstLoad].reduce((sum, path) => sum + gzipOf(path), 0),
    jsGzipBytes: js.reduce((sum, path) => sum + gzipOf(path), 0),
  };
}

/** An output and every output it imports statically, transitively: what the browser fetches before running it. */
function staticClosure(entry: string, outputs: Metafile['outputs']): Set<string> {
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    for (const imported of outputs[path]?.imports ?? [])
      if (imported.kind === 'import-statement') visit(imported.path);
  };
  visit(entry);
  return seen;
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

export function report(built: ConsoleBuild): string {
  const width = Math.max(...built.files.map((f) => f.path.length));
  const lines = built.files.map(
    (f) => `  ${f.path.padEnd(width)}  ${kb(f.bytes).padStart(9)}  ${kb(f.gzipBytes).padStart(9)} gzipped`,
  );
  return [
    `console built in ${relative(process.cwd(), built.outDir) || '.'}`,
    ...lines,
    `  JavaScript, gzipped: first load ${kb(built.firstLoadJsGzipBytes)} (budget ${kb(JS_BUDGET_GZIP_BYTES)}), ` +
      `all chunks ${kb(built.jsGzipBytes)}`,
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const built = await buildConsole();
  console.log(report(built));
  if (built.firstLoadJsGzipBytes > JS_BUDGET_GZIP_BYTES) {
    console.error(
      `the console's first load is over budget: ${kb(built.firstLoadJsGzipBytes)} of gzipped JavaScript`,
    );
    process.exit(1);
  }
}
