import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { testGateway } from './support.js';

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
}

const closed = (socket: Socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()));

describe('graceful close', () => {
  it('does not wait for a connection that never sent a byte (a preconnected browser socket, a TCP check)', async () => {
    const gateway = await testGateway();
    const url = await gateway.app.listen({ host: '127.0.0.1', port: 0 });
    const port = Number(new URL(url).port);
    const silent = await openSocket(port);
    const served = await openSocket(port);
    // A keep-alive connection that did carry a request: the normal drain closes it once idle.
    served.write(`GET /health/live HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    const answer = await new Promise<string>((resolve) => served.once('data', (b) => resolve(b.toString())));
    expect(answer).toMatch(/^HTTP\/1.1 200/);

    const silentClosed = closed(silent);
    const servedClosed = closed(served);
    // Without the silent socket closed, this would wait for Node's headers timeout (60 s), beyond the test's.
    await gateway.app.close();
    await Promise.all([silentClosed, servedClosed]);
    expect(silent.destroyed && served.destroyed).toBe(true);
    await gateway.close();
  }, 30_000);
});
