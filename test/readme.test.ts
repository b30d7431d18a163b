import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const entry = join(root, 'src', 'index.ts');

/** Every ```ts block announced by `<!-- example: name -->` in the README, as written there. */
function readmeExamples(): Array<{ name: string; code: string }> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const pattern = /<!-- example: ([\w-]+) -->\s*```ts\n([\s\S]*?)```/g;
  return [...readme.matchAll(pattern)].map((m) => ({ name: m[1] as string, code: m[2] as string }));
}

describe('README examples', () => {
  const examples = readmeExamples();

  it('exist', () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
  });

  // Each example runs as its own process against the real store and broker, importing the package entry point.
  it.each(examples)('$name runs as documented', async ({ name, code }) => {
    const dir = join(root, '.tmp', 'readme');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}.ts`);
    writeFileSync(file, code.replaceAll("from 'tollgate'", `from '${entry}'`));
    const env = { ...process.env, DYNAMODB_ENDPOINT: inject('dynamoEndpoint') };
    const { stdout } = await run(process.execPath, ['--import', 'tsx', file], {
      cwd: dir,
      env,
      timeout: 60_000,
    });
    expect(stdout).toContain('ok');
  });
});
