import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

/**
 * A loopback port the OS says is free now. A small race remains until the caller binds it, so callers that
 * start a server on it retry on EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('the OS gave no free port'));
      });
    });
  });
}

/**
 * A free loopback port below the OS's ephemeral range, for a server that binds it later and again after each
 * restart (the soak's workers). A port from `freePort()` is an ephemeral one, which any outgoing connection on
 * the machine may take meanwhile: the soak opens thousands. Below the range, only another listener can.
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
