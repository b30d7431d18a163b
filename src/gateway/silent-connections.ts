import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Connections that were opened and never sent a byte: a browser's preconnected spare socket, a load balancer's TCP
 * check. Node's `closeIdleConnections()` does not count them as idle, so a graceful close would wait for them until
 * the headers timeout. They carry no work, so closing them loses nothing; a socket that has sent anything is left
 * to the normal drain (one that sent part of a request is kept too).
 */
export function trackSilentConnections(server: Server): { destroy(): number } {
  const silent = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    silent.add(socket);
    socket.once('close', () => silent.delete(socket));
  });
  // The HTTP parser reads the socket itself (no 'data' events): its first request is the sign it spoke.
  server.on('request', (request: IncomingMessage) => silent.delete(request.socket));
  return {
    destroy() {
      let closed = 0;
      for (const socket of silent) {
        if (socket.bytesRead !== 0) continue;
        socket.destroy();
        closed++;
      }
      silent.clear();
      return closed;
    },
  };
}
