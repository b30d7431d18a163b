/**
 * A small TCP fault proxy for the soak: it listens on a local port and pipes every connection to a target
 * (DynamoDB Local, RabbitMQ), and can be told, while traffic flows, to
 * - `pass`: forward bytes as they come;
 * - `delay`: hold every chunk `ms` milliseconds before forwarding it (order kept per direction);
 * - `reset`: reset (TCP RST) every open connection and every new one while the mode lasts;
 * - `blackhole`: forward nothing and answer nothing (a partition: bytes wait in the kernel buffers, new
 *   connections are accepted but not connected) until the mode changes; then everything flows again.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode =
  | { kind: 'pass' }
  | { kind: 'delay'; ms: number }
  | { kind: 'reset' }
  | { kind: 'blackhole' };

export interface FaultProxyOptions {
  name: string;
  targetHost: string;
  targetPort: number;
  /** Default 0 (a free port). */
  listenPort?: number;
}

export interface FaultProxyStats {
  connections: number;
  resets: number;
  bytes: number;
}

interface Direction {
  from: Socket;
  to: Socket;
  queue: Array<{ chunk: Buffer; releaseAt: number }>;
  timer: NodeJS.Timeout | undefined;
}

interface Link {
  client: Socket;
  upstream: Socket | undefined;
  directions: Direction[];
  closed: boolean;
}

export class FaultProxy {
  readonly stats: FaultProxyStats = { connections: 0, resets: 0, bytes: 0 };
  private readonly links = new Set<Link>();
  private mode: ProxyMode = { kind: 'pass' };

  private constructor(
    private readonly server: Server,
    readonly options: FaultProxyOptions,
    readonly port: number,
  ) {}

  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    let proxy: FaultProxy | undefined;
    const server = createServer((client) => proxy?.accept(client));
    server.on('error', () => undefined);
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listenPort ?? 0, '127.0.0.1', () => {
        const address = server.address();
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('the proxy has no port'));
      });
    });
    proxy = new FaultProxy(server, options, port);
    return proxy;
  }

  get currentMode(): ProxyMode {
    return this.mode;
  }

  setMode(mode: ProxyMode): void {
    const previous = this.mode;
    this.mode = mode;
    if (mode.kind === 'reset') {
      for (const link of [...this.links]) this.reset(link);
      return;
    }
    if (mode.kind === 'blackhole') {
      for (const link of this.links) {
        link.client.pause();
        link.upstream?.pause();
      }
      return;
    }
    if (previous.kind === 'blackhole') {
      for (const link of [...this.links]) {
        if (link.upstream === undefined) this.connectUpstream(link);
        else {
          link.client.resume();
          link.upstream.resume();
          for (const direction of link.directions) this.pump(direction);
        }
      }
    }
  }

  /** Resets every open connection (whatever the mode). */
  resetAll(): void {
    for (const link of [...this.links]) this.reset(link);
  }

  async close(): Promise<void> {
    for (const link of [...this.links]) this.destroy(link);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.stats.connections += 1;
    client.on('error', () => undefined);
    client.setNoDelay(true);
    if (this.mode.kind === 'reset') {
      this.stats.resets += 1;
      client.resetAndDestroy();
      return;
    }
    const link: Link = { client, upstream: undefined, directions: [], closed: false };
    this.links.add(link);
    client.on('close', () => this.destroy(link));
    if (this.mode.kind === 'blackhole') {
      client.pause(); // connected later, when the blackhole ends
      return;
    }
    this.connectUpstream(link);
  }

  private connectUpstream(link: Link): void {
    if (link.closed) return;
    const upstream = createConnection({ host: this.options.targetHost, port: this.options.targetPort });
    upstream.setNoDelay(true);
    upstream.on('error', () => this.reset(link));
    upstream.on('close', () => this.destroy(link));
    link.upstream = upstream;
    link.directions = [this.direction(link.client, upstream), this.direction(upstream, link.client)];
    link.client.resume();
  }

  private direction(from: Socket, to: Socket): Direction {
    const direction: Direction = { from, to, queue: [], timer: undefined };
    from.on('data', (chunk: Buffer) => {
      this.stats.bytes += chunk.length;
      const delay = this.mode.kind === 'delay' ? this.mode.ms : 0;
      direction.queue.push({ chunk, releaseAt: Date.now() + delay });
      this.pump(direction);
    });
    return direction;
  }

  private pump(direction: Direction): void {
    if (this.mode.kind === 'blackhole' || this.mode.kind === 'reset') return;
    if (direction.timer) return;
    const now = Date.now();
    while (direction.queue.length > 0) {
      const head = direction.queue[0]!;
      if (head.releaseAt > now) {
        direction.timer = setTimeout(() => {
          direction.timer = undefined;
          this.pump(direction);
        }, head.releaseAt - now);
        return;
      }
      direction.queue.shift();
      if (!direction.to.destroyed) direction.to.write(head.chunk);
    }
  }

  private reset(link: Link): void {
    if (link.closed) return;
    this.stats.resets += 1;
    link.closed = true;
    this.links.delete(link);
    for (const direction of link.directions) if (direction.timer) clearTimeout(direction.timer);
    if (!link.client.destroyed) link.client.resetAndDestroy();
    if (link.upstream && !link.upstream.destroyed) link.upstream.resetAndDestroy();
  }

  private destroy(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    this.links.delete(link);
    for (const direction of link.directions) if (direction.timer) clearTimeout(direction.timer);
    link.client.destroy();
    link.upstream?.destroy();
  }
}
