import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where `npm run build:console` writes the console: `dist/console` under the package root. The root is found from
 * this module's own place, which is `src/gateway` under tsx and `dist/src/gateway` once compiled, so the gateway
 * finds the same files either way, whatever the working directory.
 */
export function builtConsoleDir(): string {
  return join(packageRoot(dirname(fileURLToPath(import.meta.url))), 'dist', 'console');
}

/** The nearest folder at or above `from` that holds a package.json. */
function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return from;
  }
}
