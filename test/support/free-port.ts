import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

/**
 * A free loopback port below the OS's ephemeral range, for a server another process binds later, and again
 * after each restart (soak workers, crash-test children, DynamoDB Local). An ephemeral port (what `listen(0)`
 * hands out) may meanwhile be taken by any outgoing connection on the machine, and the tests open thousands;
 * below the range, only another listener can take it.
 */
export async function stablePort(): Promise<number> {
  const ephemeralStart = await ephemeralRangeStart();
  const low = 10_000;
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = low + Math.floor(Math.random() * (ephemeralStart - low));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port between ${low} and ${ephemeralStart}`);
}

/** Linux's `ip_local_port_range` start (32768 by default; the same default is assumed elsewhere). */
async function ephemeralRangeStart(): Promise<number> {
  try {
    const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    const start = Number(range.trim().split(/\s+/)[0]);
    return Number.isInteger(start) && start > 11_000 ? start : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
