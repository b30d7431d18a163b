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
 * named it), each simple-protocol Query one per `;`-separated statement. A round trip is a Sync or a Query sent
 * while none sent before it awaits its answer (the server's ReadyForQuery); one sent behind another without
 * waiting (pipelined) rides the same round trip. It
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
    // Sync points sent and not yet answered: a new one starts a round trip only when there are none.
    let unanswered = 0;
    const answers = new BackendParser(() => {
      unanswered = Math.max(0, unanswered - 1);
    });
    const parser = new FrontendParser(
      (kind) => {
        if (this.#counting) this.#byKind.set(kind, (this.#byKind.get(kind) ?? 0) + 1);
      },
      () => {
        if (this.#counting && unanswered === 0) this.#roundTrips += 1;
        unanswered += 1;
      },
      () => answers.expectSslAnswer(),
    );
    // Each side's chunk is read before it is passed on, so an answer is counted before the client can react to it.
    upstream.on('data', (chunk) => {
      answers.push(chunk);
      client.write(chunk);
    });
    client.on('data', (chunk) => {
      parser.push(chunk);
      upstream.write(chunk);
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
    private readonly onSyncPoint: () => void,
    private readonly onSslRequest: () => void,
  ) {}

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      if (!this.#started) {
        // Start-up messages carry no type byte: SSLRequest / GSSENCRequest, then the StartupMessage (protocol 3.0).
        if (this.#buffer.length < 8) return;
        const length = this.#buffer.readInt32BE(0);
        if (this.#buffer.length < length) return;
        const code = this.#buffer.readInt32BE(4);
        if (code === 196608) this.#started = true;
        else if (code === SSL_REQUEST) this.onSslRequest();
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
      case 'Q': // simple query: a sync point of its own, maybe several statements
        this.onSyncPoint();
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
      case 'S': // Sync: the end of an extended-protocol batch, answered with one ReadyForQuery
        this.onSyncPoint();
        break;
      default:
        break;
    }
  }
}

/** The request code of an SSLRequest, which the server answers with one untyped byte. */
const SSL_REQUEST = 80877103;

/** Frames the backend (server → client) messages of one connection; reports each ReadyForQuery. */
class BackendParser {
  #buffer: Buffer = Buffer.alloc(0);
  #sslAnswers = 0;

  constructor(private readonly onReadyForQuery: () => void) {}

  expectSslAnswer(): void {
    this.#sslAnswers += 1;
  }

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      if (this.#sslAnswers > 0 && this.#buffer.length > 0) {
        this.#sslAnswers -= 1;
        this.#buffer = this.#buffer.subarray(1);
        continue;
      }
      if (this.#buffer.length < 5) return;
      const length = this.#buffer.readInt32BE(1);
      if (this.#buffer.length < length + 1) return;
      if (this.#buffer[0] === READY_FOR_QUERY) this.onReadyForQuery();
      this.#buffer = this.#buffer.subarray(length + 1);
    }
  }
}

const READY_FOR_QUERY = 'Z'.charCodeAt(0);

function cString(buffer: Buffer, start: number): { value: string; next: number } {
  const end = buffer.indexOf(0, start);
  return { value: buffer.toString('utf8', start, end), next: end + 1 };
}

/** The statement's first keyword, past comments. */
function kindOf(sql: string): string {
  const word = /^\s*(?:--[^\n]*\n\s*|\/\*[\s\S]*?\*\/\s*)*([A-Za-z]+)/.exec(sql)?.[1];
  return word ? word.toUpperCase() : '?';
}
