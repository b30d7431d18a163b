import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

/*
 * Model check of the token protocol (model/tollgate.pml, assumptions in model/README.md): Spin generates a
 * verifier, gcc compiles it, pan searches the whole state space. The correct protocol must show no error; each
 * bug switch must show the error it is meant to cause, so that a green run means the check has teeth.
 */

const run = promisify(execFile);
const model = resolve(import.meta.dirname, '..', '..', 'model', 'tollgate.pml');
const work = mkdtempSync(join(tmpdir(), 'tollgate-spin-'));
const TIMEOUT = 120_000;

type Mode = 'safety' | 'liveness';

interface PanResult {
  errors: number;
  states: number;
  output: string;
  command: string;
}

/** The tools the check needs; a missing one fails every test with how to install it (never a silent skip). */
function missingTools(): string | undefined {
  const tools = [
    { tool: 'spin', args: ['-V'], hint: 'install the Debian package "spin" (apt-get install -y spin)' },
    { tool: 'gcc', args: ['--version'], hint: 'install the Debian package "gcc"' },
  ];
  for (const { tool, args, hint } of tools) {
    const probe = spawnSync(tool, args, { encoding: 'utf8' });
    if (probe.error) return `${tool} is not installed or not on PATH (${probe.error.message}): ${hint}`;
  }
  return undefined;
}

const missing = missingTools();

const builds = new Map<string, Promise<string>>();

/** spin -a [-D...] + gcc, once per (mode, defines); returns the directory holding `pan`. */
function build(mode: Mode, defines: string[]): Promise<string> {
  if (missing) throw new Error(missing);
  const key = [mode, ...defines].join('-');
  let built = builds.get(key);
  if (!built) {
    built = (async () => {
      const dir = join(work, key);
      mkdirSync(dir, { recursive: true });
      await run('spin', ['-a', ...defines.map((d) => `-D${d}`), model], { cwd: dir });
      const flags = mode === 'safety' ? ['-DSAFETY', '-DNOCLAIM'] : ['-DNFAIR=3'];
      await run('gcc', ['-O1', ...flags, '-o', 'pan', 'pan.c'], { cwd: dir });
      return dir;
    })();
    builds.set(key, built);
  }
  return built;
}

let runs = 0;

/** Runs pan in a fresh directory (the trail file lands there) and parses its report. */
async function verify(mode: Mode, defines: string[] = [], claim?: string): Promise<PanResult> {
  const dir = await build(mode, defines);
  const cwd = join(work, `run-${++runs}`);
  mkdirSync(cwd);
  // Liveness: acceptance cycles under weak fairness; -A leaves assertions to the safety run, so that an error
  // reported here is the claim's.
  const args = mode === 'safety' ? [] : ['-a', '-f', '-A', '-N', claim ?? 'live1'];
  const { stdout } = await run(join(dir, 'pan'), args, { cwd, maxBuffer: 16 * 1024 * 1024 });
  const errors = /errors: (\d+)/.exec(stdout)?.[1];
  const states = /(\d+) states, stored/.exec(stdout)?.[1];
  const command = `spin -a ${defines.map((d) => `-D${d} `).join('')}model/tollgate.pml; pan ${args.join(' ')}`;
  if (errors === undefined || states === undefined) {
    throw new Error(`unexpected pan output for ${command}:\n${stdout}`);
  }
  return { errors: Number(errors), states: Number(states), output: stdout, command };
}

/** The lines of pan's report that say what went wrong (or that the search was incomplete). */
function findings(result: PanResult): string {
  const lines = result.output.split('\n').filter((l) => /^pan|error|depth too small|search for/.test(l));
  return `${result.command}\n${lines.join('\n')}`;
}

function expectClean(result: PanResult): void {
  expect(result.errors, findings(result)).toBe(0);
  expect(result.output, 'the search must be exhaustive').toContain('Full statespace search');
  expect(result.output, 'the search must not be cut by the depth limit').not.toContain('depth too small');
  expect(result.states).toBeGreaterThan(1000);
}

describe.concurrent('token protocol model (spin)', () => {
  it('has spin and gcc to run the check', () => {
    expect(missing, missing).toBeUndefined();
  });

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  describe('the protocol as specified', () => {
    it(
      'is safe: no state change applied twice, causal order kept, nothing left in flight at quiescence',
      async () => {
        expectClean(await verify('safety'));
      },
      TIMEOUT,
    );

    it(
      'is safe when consumed tombstones are deleted at any time (-DGC)',
      async () => {
        expectClean(await verify('safety', ['GC']));
      },
      TIMEOUT,
    );

    it.each([
      ['live1', 'the edge token is eventually consumed (<> applied == 1)'],
      ['live2', 'the token minted by the handler is eventually consumed downstream (<> applied2 == 1)'],
      ['settled', 'eventually everything minted is consumed exactly once and nothing is in flight'],
    ])(
      'is live under weak fairness: %s, %s',
      async (claim) => {
        expectClean(await verify('liveness', [], claim));
      },
      TIMEOUT,
    );
  });

  describe('the check catches protocol bugs', () => {
    const bugs: Array<{ bug: string; mode: Mode; claim?: string; violation: RegExp; why: string }> = [
      {
        bug: 'ACK_BEFORE_COMMIT',
        mode: 'safety',
        violation: /assertion violated \(+applied==1\)&&\(applied2==1\)/,
        why: 'a crash between the ack and the commit loses the signal',
      },
      {
        bug: 'ACK_BEFORE_COMMIT',
        mode: 'liveness',
        claim: 'live1',
        violation: /acceptance cycle/,
        why: 'the lost signal is never consumed',
      },
      {
        bug: 'DISPATCH_BEFORE_COMMIT',
        mode: 'safety',
        violation: /assertion violated \((applied==1|applied2<=1)\)/,
        why: 'downstream applies an effect whose cause has not committed',
      },
      {
        bug: 'UNCONDITIONAL_CONSUME',
        mode: 'safety',
        violation: /assertion violated \(applied<=1\)/,
        why: 'two copies that both pass the cheap check both apply',
      },
      {
        bug: 'BLIND_MARK',
        mode: 'safety',
        violation: /assertion violated/,
        why: 'marking a consumed token dispatched resurrects it',
      },
      {
        bug: 'NO_RELAY',
        mode: 'safety',
        violation: /assertion violated/,
        why: 'a token left pending by a crash stays in flight',
      },
      {
        bug: 'NO_RELAY',
        mode: 'liveness',
        claim: 'live2',
        violation: /acceptance cycle/,
        why: 'a token left pending by a crash is never consumed',
      },
    ];

    for (const { bug, mode, claim, violation, why } of bugs) {
      it(
        `-D${bug} fails the ${claim ?? mode} check: ${why}`,
        async () => {
          const result = await verify(mode, [bug], claim);
          expect(result.errors, findings(result)).toBeGreaterThan(0);
          expect(result.output).toMatch(violation);
        },
        TIMEOUT,
      );
    }
  });
});
