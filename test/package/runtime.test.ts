import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The Node line the image runs, the lines package.json promises (engines), the types the code is checked against
 * and the native driver the image installs must agree. No Docker engine runs here, so this reads the files.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

interface Manifest {
  engines: { node: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
}
interface LockEntry {
  version: string;
  engines?: { node?: string } | string[];
}
const pkg = JSON.parse(read('package.json')) as Manifest;
const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, LockEntry> };
const dockerfile = read('Dockerfile');

const majorOf = (version: string) => Number(/^v?(\d+)/.exec(version)?.[1]);

/** One comparator (`>=20`, `^12.11.1`, `22.x`, `<21.1`) admits some version of the given major. */
function comparatorAdmits(comparator: string, major: number): boolean {
  const match = /^(>=|<=|>|<|\^|~|=)?v?(\d+|x|\*)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?/.exec(comparator);
  if (!match) throw new Error(`unsupported version comparator "${comparator}"`);
  const [, op = '=', head, minor = '0', patch = '0'] = match;
  if (head === 'x' || head === '*') return true;
  const n = Number(head);
  if (op === '>=') return major >= n;
  if (op === '>') return major > n || (major === n && comparator.includes('.'));
  if (op === '<=') return major <= n;
  if (op === '<') return major < n || (major === n && (Number(minor) > 0 || Number(patch) > 0));
  return major === n;
}

/** Whether an npm range (`a || b`, each a space-separated conjunction) admits some version of the given major. */
function admitsMajor(range: string, major: number): boolean {
  return range
    .split('||')
    .map((alternative) => alternative.trim().replace(/([<>=^~]+)\s+/g, '$1'))
    .some((alternative) =>
      (alternative === '' ? ['*'] : alternative.split(/\s+/)).every((c) => comparatorAdmits(c, major)),
    );
}

function lockEntry(name: string): LockEntry {
  const entry = lock.packages[`node_modules/${name}`];
  if (!entry) throw new Error(`${name} is not in package-lock.json`);
  return entry;
}

function nodeEnginesOf(name: string): string | undefined {
  const engines = lockEntry(name).engines;
  return Array.isArray(engines) ? undefined : engines?.node;
}

/** The Node major of every `FROM node:<major>-slim` stage. */
const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)/gim)].map((m) => m[1] as string);
const imageMajor = majorOf(/^node:(\d+)-slim$/.exec(stages[0] ?? '')?.[1] ?? '');
const machineMajor = majorOf(process.version);
/** The oldest Node line engines admits. */
const floorMajor = Array.from({ length: 60 }, (_, i) => i + 1).find((major) =>
  admitsMajor(pkg.engines.node, major),
);

describe('the Dockerfile and package.json agree on Node', () => {
  it('reads npm ranges by major: alternatives, conjunctions, carets, x-ranges and bounds', () => {
    expect(admitsMajor('20.x || 22.x || 24.x || 26.x', 26)).toBe(true);
    expect(admitsMajor('20.x || 22.x || 24.x || 26.x', 21)).toBe(false);
    expect(admitsMajor('>=22', 20)).toBe(false);
    expect(admitsMajor('>= 18', 26)).toBe(true);
    expect(admitsMajor('^18.18.0 || ^20.9.0 || >=21.1.0', 26)).toBe(true);
    expect(admitsMajor('>=14 <21', 22)).toBe(false);
    expect(admitsMajor('<20.1', 20)).toBe(true);
    expect(admitsMajor('*', 7)).toBe(true);
  });

  it('builds and runs every stage on one official node:<major>-slim image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage).toBe(`node:${imageMajor}-slim`);
    expect(Number.isInteger(imageMajor)).toBe(true);
  });

  it("promises the image's Node line and this machine's in engines", () => {
    expect(admitsMajor(pkg.engines.node, imageMajor), `${pkg.engines.node} vs node ${imageMajor}`).toBe(true);
    expect(admitsMajor(pkg.engines.node, machineMajor), `${pkg.engines.node} vs ${process.version}`).toBe(
      true,
    );
  });

  it('type-checks against the oldest Node engines promises, so the code uses no newer API', () => {
    expect(floorMajor).toBeDefined();
    expect(majorOf(pkg.devDependencies['@types/node']?.replace(/^[\^~]/, '') ?? '')).toBe(floorMajor);
  });

  it("installs the lock file's better-sqlite3 in the image, a release built for the image's Node and this one", () => {
    // npm ci installs exactly the lock file; no other install step may bring a different better-sqlite3.
    expect(dockerfile).toMatch(/^RUN npm ci\b/m);
    expect(dockerfile).not.toMatch(/npm (?:i|install|add)\b[^\n]*better-sqlite3/);
    const { version } = lockEntry('better-sqlite3');
    for (const declared of [pkg.devDependencies['better-sqlite3'], pkg.peerDependencies['better-sqlite3']]) {
      expect(declared, 'better-sqlite3 in package.json').toBeDefined();
      expect(majorOf(version), `lock ${version} vs package.json ${declared}`).toBe(
        majorOf(declared?.replace(/^[\^~]/, '') ?? ''),
      );
    }
    const engines = nodeEnginesOf('better-sqlite3');
    expect(engines, 'better-sqlite3 declares the Node lines it is built for').toBeDefined();
    expect(
      admitsMajor(engines ?? '', imageMajor),
      `better-sqlite3 ${version} (${engines}) on node ${imageMajor}`,
    ).toBe(true);
    expect(admitsMajor(engines ?? '', machineMajor), `better-sqlite3 ${version} on ${process.version}`).toBe(
      true,
    );
  });

  it("ships only dependencies and drivers that run on the image's Node and on the engines floor", () => {
    const shipped = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)];
    for (const name of shipped) {
      const engines = nodeEnginesOf(name);
      if (engines === undefined) continue;
      expect(admitsMajor(engines, imageMajor), `${name} (${engines}) on node ${imageMajor}`).toBe(true);
      expect(admitsMajor(engines, floorMajor ?? 0), `${name} (${engines}) on node ${floorMajor}`).toBe(true);
    }
  });
});
