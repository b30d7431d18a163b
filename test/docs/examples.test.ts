import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const entry = join(root, 'src', 'index.ts');

/** The README and the reference pages under docs/. */
function documents(): string[] {
  const docs = join(root, 'docs');
  const pages = existsSync(docs) ? readdirSync(docs).filter((f) => f.endsWith('.md')) : [];
  return [join(root, 'README.md'), ...pages.sort().map((page) => join(docs, page))];
}

/** Every ```ts block announced by `<!-- example: name -->` in the docs, as written there. */
function readmeExamples(): Array<{ name: string; code: string }> {
  const pattern = /<!-- example: ([\w-]+) -->\s*```ts\n([\s\S]*?)```/g;
  return documents().flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(pattern)].map((m) => ({
      name: m[1] as string,
      code: m[2] as string,
    })),
  );
}

describe('README and docs/ examples', () => {
  const examples = readmeExamples();

  it('have unique names', () => {
    expect(new Set(examples.map((e) => e.name)).size).toBe(examples.length);
  });

  it('exist', () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
  });

  // Each example runs as its own process against the real store and broker, importing the package entry point.
  it.each(examples)('$name runs as documented', async ({ name, code }) => {
    const dir = join(root, '.tmp', 'readme');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}.ts`);
    writeFileSync(
      file,
      code.replace(
        /from 'tollgate(?:\/([\w-]+))?'/g,
        (_, sub?: string) => `from '${sub ? join(root, 'src', 'entries', `${sub}.ts`) : entry}'`,
      ),
    );
    const env = { ...process.env, DYNAMODB_ENDPOINT: inject('dynamoEndpoint') };
    const { stdout } = await run(process.execPath, ['--import', 'tsx', file], {
      cwd: dir,
      env,
      timeout: 60_000,
    });
    expect(stdout).toContain('ok');
  });
});
