import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { fmt } from './measure.js';
import type { Row } from './pg-shared.js';

/* Counting the statements a PostgreSQL client sends, at the wire, for the PostgreSQL bench (bench/postgres.ts). */

export function countRow(name: string, counted: Counted, signals: number): Row {
  return {
    contender: name,
    'statements/signal': fmt(counted.statements / signals, 1),
    'round trips/signal': fmt(counted.roundTrips / signals, 1),
    'by kind, per signal': breakdown(counted.byKind, signals),
  };
}

const KIND_LETTERS: Record<string, string> = {
  BEGIN: 'B',
  COMMIT: 'C',
  ROLLBACK: 'R',
  SELECT: 'S',
  INSERT: 'I',
  UPDATE: 'U',
  DELETE: 'D',
  WITH: 'W',
};

function breakdown(byKind: ReadonlyMap<string, number>, signals: number): string {
  return [...byKind]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, n]) => `${KIND_LETTERS[kind] ?? kind} ${fmt(n / signals, 1)}`)
    .join(', ');
}

export interface Counted {
  statements: number;
  roundTrips: number;
  /** Statements by first keyword (BEGIN, SELECT, ...). */
  byKind: ReadonlyMap<string, number>;
}

/**
 * A TCP proxy in front of PostgreSQL that reads the client → server half of the protocol and counts what is
 * executed: each extended-protocol Execute is one statement (the one its portal was bound to, by the Parse that
 * named it), each simple-protocol Query one per `;`-separated statement; a round trip is a Sync or a Query. It
 * does not depend on the client library (node-postgres here, whatever DBOS runs inside) and needs nothing on the
 * server (pg_stat_statements is not preloaded on it). Only for untimed runs: it adds a hop to every round trip.
 */
export class WireCounter {
  readonly #sockets = new Set<Socket>();
  #counting = false;
  #byKind = new Map<string, number>();
  #roundTrips = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<WireCounter> {
    const accepted: Socket[] = [];
    let counter: WireCounter | undefined;
    const server = createServer((client) => {
      if (counter) counter.#accept(client, target);
      else accepted.push(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('counting proxy has no port');
    counter = new WireCounter(server, address.port);
    for (const client of accepted) counter.#accept(client, target);
    return counter;
  }

  /** Counts what every connection sends while `body` runs. */
  async count(body: () => Promise<void>): Promise<Counted> {
    this.#byKind = new Map();
    this.#roundTrips = 0;
    this.#counting = true;
    try {
      await body();
    } finally {
      this.#counting = false;
    }
    return {
      statements: [...this.#byKind.values()].reduce((a, b) => a + b, 0),
      roundTrips: this.#roundTrips,
      byKind: this.#byKind,
    };
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #accept(client: Socket, target: { host: string; port: number }): void {
    const upstream = tcpConnect(target.port, target.host);
    this.#sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) socket.on('error', end).on('close', end);
    upstream.on('data', (chunk) => client.write(chunk));
    const parser = new FrontendParser(
      (kind) => {
        if (this.#counting) this.#byKind.set(kind, (this.#byKind.get(kind) ?? 0) + 1);
      },
      () => {
        if (this.#counting) this.#roundTrips += 1;
      },
    );
    client.on('data', (chunk) => {
      upstream.write(chunk);
      parser.push(chunk);
    });
  }
}

/** Frames the frontend (client → server) messages of one connection; reports statements and round trips. */
class FrontendParser {
  #buffer: Buffer = Buffer.alloc(0);
  #started = false;
  readonly #statements = new Map<string, string>();
  readonly #portals = new Map<string, string>();

  constructor(
    private readonly onStatement: (kind: string) => void,
    private readonly onRoundTrip: () => void,
  ) {}

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      if (!this.#started) {
        // Start-up messages carry no type byte: SSLRequest / GSSENCRequest, then the StartupMessage (protocol 3.0).
        if (this.#buffer.length < 8) return;
        const length = this.#buffer.readInt32BE(0);
        if (this.#buffer.length < length) return;
        if (this.#buffer.readInt32BE(4) === 196608) this.#started = true;
        this.#buffer = this.#buffer.subarray(length);
        continue;
      }
      if (this.#buffer.length < 5) return;
      const length = this.#buffer.readInt32BE(1);
      if (this.#buffer.length < length + 1) return;
      const type = String.fromCharCode(this.#buffer[0] as number);
      const body = this.#buffer.subarray(5, length + 1);
      this.#buffer = this.#buffer.subarray(length + 1);
      this.#message(type, body);
    }
  }

  #message(type: string, body: Buffer): void {
    switch (type) {
      case 'Q': // simple query: one round trip, maybe several statements
        this.onRoundTrip();
        for (const statement of cString(body, 0).value.split(';')) {
          if (statement.trim() !== '') this.onStatement(kindOf(statement));
        }
        break;
      case 'P': {
        // Parse: statement name, text
        const name = cString(body, 0);
        this.#statements.set(name.value, cString(body, name.next).value);
        break;
      }
      case 'B': {
        // Bind: portal name, statement name
        const portal = cString(body, 0);
        this.#portals.set(portal.value, this.#statements.get(cString(body, portal.next).value) ?? '?');
        break;
      }
      case 'E': // Execute: portal name
        this.onStatement(kindOf(this.#portals.get(cString(body, 0).value) ?? '?'));
        break;
      case 'S': // Sync: the end of an extended-protocol round trip
        this.onRoundTrip();
        break;
      default:
        break;
    }
  }
}

function cString(buffer: Buffer, start: number): { value: string; next: number } {
  const end = buffer.indexOf(0, start);
  return { value: buffer.toString('utf8', start, end), next: end + 1 };
}

/** The statement's first keyword, past comments. */
function kindOf(sql: string): string {
  const word = /^\s*(?:--[^\n]*\n\s*|\/\*[\s\S]*?\*\/\s*)*([A-Za-z]+)/.exec(sql)?.[1];
  return word ? word.toUpperCase() : '?';
}
