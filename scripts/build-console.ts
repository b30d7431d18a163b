/**
 * npm run build:console — bundles the console (console/src, Preact and Cytoscape) with esbuild into dist/console:
 * index.html, assets/app-<hash>.js and assets/app-<hash>.css, each with a .gz twin the gateway serves to browsers
 * that accept gzip. Prints every file's size and gzipped size, and fails when the gzipped JavaScript exceeds the
 * budget (the console's first load must stay under 300 KB of it).
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

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
    bundle: true,
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
  const outputs = Object.keys(result.metafile.outputs).map((path) => resolve(ROOT, path));
  const script = outputs.find((path) => path.endsWith('.js'));
  const style = outputs.find((path) => path.endsWith('.css'));
  if (!script || !style)
    throw new Error(`esbuild produced no script or no stylesheet: ${outputs.join(', ')}`);

  const html = readFileSync(join(SOURCE, 'index.html'), 'utf8')
    .replace('{{app.js}}', basename(script))
    .replace('{{app.css}}', basename(style));
  writeFileSync(join(outDir, 'index.html'), html);

  const files = [join(outDir, 'index.html'), script, style].map((path): BuiltFile => {
    const content = readFileSync(path);
    const gzip = gzipSync(content, { level: 9 });
    writeFileSync(`${path}.gz`, gzip);
    return { path: relative(outDir, path), bytes: statSync(path).size, gzipBytes: gzip.length };
  });
  const jsGzipBytes = files.filter((f) => f.path.endsWith('.js')).reduce((sum, f) => sum + f.gzipBytes, 0);
  return { outDir, files, jsGzipBytes };
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
    `  JavaScript, gzipped: ${kb(built.jsGzipBytes)} (budget ${kb(JS_BUDGET_GZIP_BYTES)})`,
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const built = await buildConsole();
  console.log(report(built));
  if (built.jsGzipBytes > JS_BUDGET_GZIP_BYTES) {
    console.error(`the console's JavaScript is over budget: ${kb(built.jsGzipBytes)} gzipped`);
    process.exit(1);
  }
}
