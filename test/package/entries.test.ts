import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  main: string;
  types: string;
  exports: Record<string, string | { types: string; default: string }>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

/**
 * What each entry may load of the drivers and frameworks the user brings (the peer dependencies), and one name it
 * must export. The core loads none: it is the protocol over the store port, whatever the user runs it on.
 */
const ENTRIES: Record<string, { peers: string[]; exports: string }> = {
  '.': { peers: [], exports: 'processSignal' },
  './core': { peers: [], exports: 'processSignal' },
  './sqlite': { peers: ['better-sqlite3'], exports: 'SqliteTokenStore' },
  './dynamodb': { peers: ['@aws-sdk/client-dynamodb'], exports: 'DynamoDbTokenStore' },
  './postgres': { peers: ['pg'], exports: 'PostgresTokenStore' },
  './stores': { peers: [], exports: 'openStore' },
  './amqp': { peers: ['amqplib'], exports: 'createAmqpTollgate' },
  './fastify': { peers: ['fastify'], exports: 'tollgatePlugin' },
  './gateway': { peers: ['fastify', 'amqplib'], exports: 'startGateway' },
  './process': { peers: [], exports: 'defineProcess' },
  // fast-check: loaded only when checkConvergence samples orders.
  './testing': { peers: ['better-sqlite3'], exports: 'checkConvergence' },
};

/** The loader running the TypeScript sources, not something an entry loads. */
const LOADER = new Set(['tsx', 'esbuild']);

/** `./dist/src/entries/x.js` → `src/entries/x.ts`: tsconfig.build.json compiles with rootDir '.' into dist/. */
const sourceOf = (built: string) => built.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts');

function target(subpath: string): { types: string; default: string } {
  const value = pkg.exports[subpath];
  if (typeof value !== 'object') throw new Error(`exports["${subpath}"] is not a conditions object`);
  return value;
}

/** The package a file or file URL belongs to: the last `node_modules/<name>` (or `@scope/name`) in its path. */
function packageOf(location: string): string | undefined {
  const path = location.startsWith('file:') ? fileURLToPath(location) : location;
  const names = [...path.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)];
  return names.at(-1)?.[1];
}

/** Whether a package compiles or ships a native addon (better-sqlite3 loads its addon lazily, on first open). */
function shipsNativeAddon(name: string): boolean {
  const dir = join(ROOT, 'node_modules', name);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { gypfile?: boolean };
  return (
    manifest.gypfile === true || existsSync(join(dir, 'binding.gyp')) || existsSync(join(dir, 'prebuilds'))
  );
}

interface Loaded {
  packages: string[];
  natives: string[];
  exports: string[];
}

/** Imports one entry in a fresh `node` and reports every package and native addon that import loaded. */
async function load(subpath: string, scratch: string): Promise<Loaded> {
  const source = subpath === '.' ? sourceOf(pkg.main) : sourceOf(target(subpath).default);
  const log = join(scratch, `${subpath.replace(/\W/g, '_')}.json`);
  await run(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'test/package/fixtures/load-entry.ts'), join(ROOT, source), log],
    { cwd: ROOT, timeout: 30_000 },
  );
  const report = JSON.parse(readFileSync(log, 'utf8')) as {
    resolved: string[];
    commonjs: string[];
    natives: string[];
    exports: string[];
  };
  const packages = new Set<string>();
  for (const location of [...report.resolved, ...report.commonjs]) {
    const name = packageOf(location);
    if (name !== undefined && !LOADER.has(name)) packages.add(name);
  }
  return { packages: [...packages].sort(), natives: report.natives, exports: report.exports };
}

describe('package entry points', () => {
  const peers = Object.keys(pkg.peerDependencies);
  const loaded = new Map<string, Loaded | Error>();

  // One process per entry, side by side: each import starts from an empty module cache.
  beforeAll(async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'tollgate-entries-'));
    await Promise.all(
      Object.keys(ENTRIES).map(async (subpath) => {
        loaded.set(
          subpath,
          await load(subpath, scratch).catch((error: Error & { stderr?: string }) => {
            return new Error(`importing ${subpath} failed:\n${error.stderr ?? error.message}`);
          }),
        );
      }),
    );
  }, 120_000);

  function loadedBy(subpath: string): Loaded {
    const result = loaded.get(subpath);
    if (result === undefined || result instanceof Error) throw result ?? new Error(`${subpath} not loaded`);
    return result;
  }

  it('tollgate/core loads no native module, no SDK, no driver and no framework', () => {
    for (const subpath of ['.', './core']) {
      const { packages, natives } = loadedBy(subpath);
      expect(natives, subpath).toEqual([]);
      expect(packages.filter(shipsNativeAddon), subpath).toEqual([]);
      expect(
        packages.filter((name) => peers.includes(name) || /^@(aws-sdk|smithy)\//.test(name)),
        subpath,
      ).toEqual([]);
    }
  });

  it('the root entry is the core: the same exports', () => {
    expect(loadedBy('.').exports).toEqual(loadedBy('./core').exports);
  });

  it.each(Object.entries(ENTRIES))(
    '%s imports and loads no peer dependency but its own',
    (subpath, expected) => {
      const { packages, exports } = loadedBy(subpath);
      expect(exports).toContain(expected.exports);
      expect(packages.filter((name) => peers.includes(name) && !expected.peers.includes(name))).toEqual([]);
    },
  );
});

describe('package.json exports', () => {
  it('names every entry of src/entries, each with its types, and only those', () => {
    const entries = readdirSync(join(ROOT, 'src/entries'))
      .filter((file) => file.endsWith('.ts'))
      .map((file) => `./${file.replace(/\.ts$/, '')}`);
    const subpaths = Object.keys(pkg.exports).filter((key) => key !== '.' && key !== './package.json');
    expect(subpaths.sort()).toEqual(entries.sort());
    expect(Object.keys(ENTRIES).sort()).toEqual(['.', ...entries].sort());
    for (const subpath of ['.', ...subpaths]) {
      const { types, default: code } = target(subpath);
      expect(code, subpath).toMatch(/^\.\/dist\/src\/.+\.js$/);
      expect(types, subpath).toBe(code.replace(/\.js$/, '.d.ts'));
      expect(existsSync(join(ROOT, sourceOf(code))), sourceOf(code)).toBe(true);
    }
    expect(target('.')).toEqual({ types: pkg.types, default: pkg.main });
  });

  it('leaves every driver and framework to the user: optional peers, installed for the tests', () => {
    const peers = Object.keys(pkg.peerDependencies);
    expect(peers.sort()).toEqual([
      '@aws-sdk/client-dynamodb',
      'amqplib',
      'better-sqlite3',
      'fast-check',
      'fastify',
      'pg',
    ]);
    for (const name of peers) {
      expect(pkg.peerDependenciesMeta[name]?.optional, name).toBe(true);
      expect(pkg.devDependencies[name], name).toBe(pkg.peerDependencies[name]);
      expect(pkg.dependencies[name], name).toBeUndefined();
    }
  });

  it('declares every package src/ imports, as a dependency or a peer', () => {
    const files = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts'))
      .map((file) => join(ROOT, 'src', file));
    const imported = new Map<string, string>();
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(?\s*)'([^'.][^']*)'/g)) {
        const specifier = match[1] as string;
        if (specifier.startsWith('node:')) continue;
        const name = specifier.startsWith('@')
          ? specifier.split('/').slice(0, 2).join('/')
          : (specifier.split('/')[0] as string);
        imported.set(name, relative(ROOT, file));
      }
    }
    const declared = { ...pkg.dependencies, ...pkg.peerDependencies };
    for (const [name, file] of imported)
      expect(declared[name], `${name} (imported by ${file})`).toBeDefined();
    for (const name of Object.keys(pkg.peerDependencies)) expect([...imported.keys()]).toContain(name);
  });
});
