/** Worker slots of the soak (a role + a stable name and port; restarted after every death) and rabbitmqctl. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Role, WorkerSpec } from './shared.js';

export { stablePort } from '../test/support/free-port.js';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
const READY_TIMEOUT_MS = 60_000;
const KILL_WAIT_MS = 10_000;

export interface Arming {
  point: string;
  after: number;
}

export interface SlotEvents {
  /** A worker armed with a crash point killed itself there. */
  crashFired(slot: Slot, arming: Arming): void;
  /** A worker exited without being killed (not SIGKILL): a startup failure, or worse. */
  unexpectedExit(slot: Slot, code: number | null, signal: NodeJS.Signals | null, wasReady: boolean): void;
}

/**
 * One worker slot: at most one process at a time, restarted (after `restartDelayMs`) whenever it dies while the
 * slot should run. `kill` is a SIGKILL from the harness; a crash point fires a SIGKILL from inside.
 */
export class Slot {
  starts = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private ready: Promise<boolean> = Promise.resolve(false);
  private arming: Arming | undefined;
  private nextArming: Arming | undefined;
  private killedByUs = false;
  private running = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly log: WriteStream;

  constructor(
    readonly spec: WorkerSpec,
    logDir: string,
    private readonly events: SlotEvents,
  ) {
    this.log = createWriteStream(join(logDir, `${spec.name}.log`), { flags: 'a' });
  }

  get name(): string {
    return this.spec.name;
  }

  get role(): Role {
    return this.spec.role;
  }

  get armed(): Arming | undefined {
    return this.arming;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The current process said it is ready and has not exited since. */
  get isReady(): boolean {
    return this.readyNow;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the slot's process (armed with a crash point if one was set) and resolves when it is ready. */
  start(): Promise<boolean> {
    this.running = true;
    this.spawnOnce();
    return this.ready;
  }

  /** Resolves when the current process is ready (false if it died first or took too long). */
  whenReady(): Promise<boolean> {
    return this.ready;
  }

  /** SIGKILL now; the slot restarts after `restartDelayMs`, armed with `arming` if given. */
  async kill(restartDelayMs: number, arming?: Arming): Promise<void> {
    this.nextArming = arming;
    this.restartDelay = restartDelayMs;
    if (!this.alive) return;
    this.killedByUs = true;
    this.child?.kill('SIGKILL');
    await this.exitedWithin(KILL_WAIT_MS);
  }

  /** Stops restarting and kills the process. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    if (this.alive) {
      this.killedByUs = true;
      this.child?.kill('SIGKILL');
    }
    await this.exitedWithin(KILL_WAIT_MS);
    await new Promise<void>((resolve) => this.log.end(resolve));
  }

  /** Synchronous last resort for process 'exit' handlers. */
  killNow(): void {
    this.running = false;
    if (this.alive) this.child?.kill('SIGKILL');
  }

  private restartDelay = 500;
  private readyNow = false;

  private async exitedWithin(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  private spawnOnce(): void {
    if (!this.running || this.alive) return;
    this.restartTimer = undefined;
    this.arming = this.nextArming;
    this.nextArming = undefined;
    this.killedByUs = false;
    this.starts += 1;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SOAK_WORKER_SPEC: JSON.stringify(this.spec),
      NODE_NO_WARNINGS: '1',
    };
    delete env.TOLLGATE_CRASH_AT;
    delete env.TOLLGATE_CRASH_AFTER;
    if (this.arming) {
      env.TOLLGATE_CRASH_AT = this.arming.point;
      env.TOLLGATE_CRASH_AFTER = String(this.arming.after);
    }
    const armingText = this.arming ? ` armed ${this.arming.point}#${this.arming.after}` : '';
    this.log.write(`\n=== ${new Date().toISOString()} start #${this.starts}${armingText}\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child = child;
    const arming = this.arming;
    let markReady: (ready: boolean) => void = () => undefined;
    this.ready = new Promise<boolean>((resolve) => {
      markReady = resolve;
    });
    const readyTimer = setTimeout(() => markReady(false), READY_TIMEOUT_MS);
    let seen = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      this.log.write(chunk);
      if (seen.length < 200) {
        seen += chunk.toString('utf8');
        if (seen.includes('SOAK WORKER READY')) {
          this.readyNow = true;
          markReady(true);
        }
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => this.log.write(chunk));
    child.on('error', (error) => this.log.write(`spawn error: ${error.message}\n`));
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        clearTimeout(readyTimer);
        const wasReady = this.readyNow;
        this.readyNow = false;
        markReady(false);
        this.log.write(`=== ${new Date().toISOString()} exit code=${code} signal=${signal}\n`);
        if (signal === 'SIGKILL' && !this.killedByUs && arming) this.events.crashFired(this, arming);
        else if (signal !== 'SIGKILL') this.events.unexpectedExit(this, code, signal, wasReady);
        if (this.child === child) this.child = undefined;
        if (this.running) {
          this.restartTimer = setTimeout(() => this.spawnOnce(), this.restartDelay);
          this.restartDelay = 500;
        }
        resolve();
      });
    });
  }
}

/** Runs rabbitmqctl (bounded); rejects with its output on failure. */
export function rabbitmqctl(args: readonly string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('rabbitmqctl', [...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`rabbitmqctl ${args.join(' ')}: ${error.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
