import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { TokenRecord } from '../../src/core/token.js';
import { HttpDispatchError, HttpSignalSender } from '../../src/transports/http/index.js';

const QUICK = { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 };

/** A bare node:http peer: `answer` gets each request with its number (from 1) and the body it carried. */
async function peer(
  answer: (n: number, req: http.IncomingMessage, res: http.ServerResponse, body: string) => void,
) {
  const seen: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
  const sockets: Socket[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      seen.push({ headers: req.headers, body });
      answer(seen.length, req, res, body);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.push(socket);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  servers.push(server);
  return { url: `http://127.0.0.1:${port}/signal`, seen, sockets };
}

const servers: http.Server[] = [];
const senders: HttpSignalSender[] = [];
afterEach(async () => {
  for (const sender of senders.splice(0)) sender.close();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

function sender(options: ConstructorParameters<typeof HttpSignalSender>[0] = {}): HttpSignalSender {
  const made = new HttpSignalSender({ retry: QUICK, ...options });
  senders.push(made);
  return made;
}

function tokenFor(url: string, headers?: Record<string, string>): TokenRecord {
  return {
    id: `token-${Math.random().toString(36).slice(2)}`,
    conversationId: 'conversation-1',
    mintedBy: 'test',
    status: 'pending',
    mintedAt: Date.now(),
    attempts: 0,
    destination: { medium: 'http', method: 'POST', url },
    payload: { n: 'é' },
    ...(headers ? { headers } : {}),
  };
}

const processed = (res: http.ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json', 'exactly-once-status': 'processed' });
  res.end('{"ok":true}');
};

describe('HTTP sender over node:http', () => {
  it('sends the signal with its body and headers, and keeps one connection for signals in a row', async () => {
    const at = await peer((_, __, res) => processed(res));
    const sending = sender();
    for (let i = 0; i < 3; i++) {
      const delivery = await sending.deliver(tokenFor(at.url, { 'X-Trace': `t${i}` }));
      expect(delivery).toMatchObject({ outcome: 'processed', statusCode: 200, body: '{"ok":true}' });
      expect(delivery.headers.get('content-type')).toBe('application/json');
    }
    expect(at.sockets).toHaveLength(1);
    expect(at.seen.map((request) => request.headers['x-trace'])).toEqual(['t0', 't1', 't2']);
    expect(at.seen[0]?.body).toBe('{"n":"é"}');
    expect(at.seen[0]?.headers['content-length']).toBe(String(Buffer.byteLength('{"n":"é"}')));
  });

  it('takes an answer cut off in its body as a network error, and delivers on the retry with the same token', async () => {
    const at = await peer((n, req, res) => {
      if (n > 1) return processed(res);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"ok"');
      setTimeout(() => req.socket.destroy(), 20);
    });
    const token = tokenFor(at.url);
    const delivery = await sender().deliver(token);
    expect(delivery).toMatchObject({ outcome: 'processed', attempts: 2 });
    expect(at.seen.map((request) => request.headers['exactly-once-token'])).toEqual([token.id, token.id]);
  });

  it('sends again at once on a new connection when a kept-alive one turns out closed, within the same attempt', async () => {
    const at = await peer((_, __, res) => processed(res));
    const sending = sender({ retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } });
    await sending.deliver(tokenFor(at.url));
    // The peer drops the idle connection the moment the next request arrives on it, before reading it: the race
    // of a client reusing a connection its peer is closing.
    const [idle] = at.sockets;
    idle?.prependListener('data', () => idle.destroy());
    const token = tokenFor(at.url);
    const delivery = await sending.deliver(token);
    expect(delivery).toMatchObject({ outcome: 'processed', attempts: 1 });
    expect(at.sockets).toHaveLength(2);
    expect(at.seen.at(-1)?.headers['exactly-once-token']).toBe(token.id);
  });

  it('names the timeout as the cause of an attempt the peer never answered', async () => {
    const at = await peer(() => undefined);
    const error = await sender({ retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 }, timeoutMs: 100 })
      .deliver(tokenFor(at.url))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpDispatchError);
    expect(error).toMatchObject({ retriable: true, details: { attempts: 1, step: 'send' } });
    expect((error as Error).cause).toMatchObject({ name: 'TimeoutError' });
  });

  it('refuses a token header no request can carry, before any request', async () => {
    const at = await peer((_, __, res) => processed(res));
    const error = await sender()
      .deliver(tokenFor(at.url, { 'x-note': 'two\nlines' }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_INVALID_CHAR' });
    expect(at.seen).toHaveLength(0);
  });

  it('ends its idle keep-alive connections on close(), not leaving them to the peer to time out', async () => {
    const at = await peer((_, __, res) => processed(res));
    const sending = sender();
    await sending.deliver(tokenFor(at.url));
    const [socket] = at.sockets;
    expect(socket?.destroyed).toBe(false);
    const ended = once(socket as Socket, 'close');
    sending.close();
    // The server keeps an idle connection for a minute: only the sender's close ends it within the test's time.
    await ended;
    expect(socket?.destroyed).toBe(true);
  });
});
