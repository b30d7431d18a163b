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
