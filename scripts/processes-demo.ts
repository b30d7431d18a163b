/**
 * The business-process part of `npm run demo`: the booking flow of the README, run by a process manager.
 *
 *   client ──AMQP──▶ booking process ──HTTP──▶ seat service ──AMQP (SeatsReserved)──▶ booking process
 *                          └──── expiry: a scheduled signal, sent by the relay when due ────▶┘
 *
 * Two bookings: b-1 is paid in time (its payment delivered twice) and confirmed; b-2 is never paid and expires.
 * The demo prints each instance while it waits for its payment (state and pending timeout), then what each
 * booking came to, counted in the store by the commits that applied it: 1 for every step that happened, 0 else.
 */
import { join } from 'node:path';
import Fastify from 'fastify';
import type { Dispatcher } from '../src/core/dispatcher.js';
import type { JsonValue } from '../src/core/fingerprint.js';
import type { Handler } from '../src/core/processor.js';
import type { TokenStore } from '../src/core/store.js';
import type { TokenRecord } from '../src/core/token.js';
import type { HandlerContext } from '../src/core/unit-of-work.js';
import {
  defineProcess,
  type Process,
  type ProcessInstanceView,
  processHandler,
  readProcessInstance,
  type StepReport,
} from '../src/entries/process.js';
import { SqliteTokenStore } from '../src/stores/sqlite/sqlite-store.js';
import { createAmqpTollgate, queueDestination } from '../src/transports/amqp/index.js';
import { HttpSignalSender, tollgateOf, tollgatePlugin } from '../src/transports/http/index.js';
import { counter, waitFor } from './two-systems.js';

type Booking = { bookingId: string; seats: number; payWithinMs: number };
type BookingSignal =
  | ({ type: 'BookingPlaced' } & Booking)
  | { type: 'SeatsReserved' | 'PaymentReceived' | 'BookingExpired'; bookingId: string };
type SeatCommand = { type: 'HoldSeats' | 'SellSeats' | 'ReleaseSeats'; bookingId: string; seats: number };

const SEATS = 10;
/** The two bookings: one paid in time, one left to expire. */
const PAID = { bookingId: 'b-1', seats: 2, payWithinMs: 60_000 };
const UNPAID = { bookingId: 'b-2', seats: 3, payWithinMs: 1_000 };
/** What is applied to each booking, where, and how many times for b-1 (paid) and b-2 (expired). */
const APPLIED: ReadonlyArray<[type: string, where: string, paid: number, unpaid: number]> = [
  ['BookingPlaced', 'process', 1, 1],
  ['SeatsReserved', 'process', 1, 1],
  ['PaymentReceived', 'process', 1, 0],
  ['BookingExpired', 'process', 0, 1],
  ['HoldSeats', 'seat service', 1, 1],
  ['SellSeats', 'seat service', 1, 0],
  ['ReleaseSeats', 'seat service', 0, 1],
];

/** Counts one application under `key`, in the commit of the hop that applied it: exactly once leaves it at 1. */
async function countApplied(work: Pick<HandlerContext, 'get' | 'put'>, key: string): Promise<void> {
  work.put(key, ((await work.get<number>(key)) ?? 0) + 1);
}

/** The booking process: its steps are pure; the seat service is told over HTTP, the expiry comes back on `queue`. */
function bookingProcess(queue: string, seatsUrl: string): Process<Booking, BookingSignal> {
  const tell = (type: SeatCommand['type'], { bookingId, seats }: Booking) => ({
    destination: { medium: 'http' as const, method: 'POST', url: seatsUrl },
    payload: { type, bookingId, seats },
  });
  return defineProcess<Booking, BookingSignal>({
    name: 'booking',
    correlate: (signal) => signal.bookingId,
    initial: ({ bookingId }) => ({ bookingId, seats: 0, payWithinMs: 0 }),
    startedBy: ['BookingPlaced'],
    on: {
      BookingPlaced: (_, { bookingId, seats, payWithinMs }) => {
        const state = { bookingId, seats, payWithinMs };
        return { state, emit: [tell('HoldSeats', state)] };
      },
      // The seats are held: the client may pay until the expiry fires.
      SeatsReserved: (state) => ({
        state,
        schedule: [
          {
            name: 'expiry',
            afterMs: state.payWithinMs,
            destination: queueDestination(queue),
            payload: { type: 'BookingExpired', bookingId: state.bookingId },
          },
        ],
      }),
      // Done: the instance is deleted and its expiry revoked, in this step's commit.
      PaymentReceived: (state) => ({ state, emit: [tell('SellSeats', state)], done: true }),
      BookingExpired: (state) => ({ state, emit: [tell('ReleaseSeats', state)], done: true }),
    },
  });
}

/** The process's handler, also counting each step it applies (`applied/<booking>/<type>`) in the step's commit. */
function countedSteps(process: Process<Booking, BookingSignal>): Handler<JsonValue, StepReport> {
  const step = processHandler(process);
  return async (ctx) => {
    const report = await step(ctx);
    await countApplied(ctx, `applied/${report.id}/${report.type}`);
    return report;
  };
}

/** The seat service: an exactly-once fastify route holding, selling and releasing seats; a hold is answered over AMQP. */
async function startSeatService(store: TokenStore, dispatcher: Dispatcher, queue: string) {
  const app = Fastify({ logger: false });
  await app.register(tollgatePlugin, { store, endpoint: 'seats', dispatcher });
  app.post('/seats', { config: { exactlyOnce: true } }, async (request) => {
    const work = tollgateOf<SeatCommand>(request);
    const { type, bookingId, seats } = work.payload;
    const free = (await work.get<number>('seats/free')) ?? SEATS;
    work.put('seats/free', free + (type === 'HoldSeats' ? -seats : type === 'ReleaseSeats' ? seats : 0));
    await countApplied(work, `applied/${bookingId}/${type}`);
    if (type === 'HoldSeats') work.emit(queueDestination(queue), { type: 'SeatsReserved', bookingId });
    return { type };
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url: `${url}/seats` };
}

function describeInstance(view: ProcessInstanceView | undefined, now: number): string {
  if (!view) return 'finished (instance deleted)';
  const timeouts = view.timeouts.map(
    (t) =>
      `${t.name} ${t.status ?? 'gone'}${t.dueAt === undefined ? '' : `, due in ${((t.dueAt - now) / 1000).toFixed(1)} s`}`,
  );
  return `state ${JSON.stringify(view.state)}, timeouts: ${timeouts.join('; ') || 'none'}`;
}

export interface ProcessesDemoOptions {
  amqpUrl: string;
  /** Where the SQLite file goes. */
  dir: string;
  /** The booking process's queue; the caller deletes it afterwards. */
  queue: string;
}

/**
 * Runs the booking flow in this process on a SQLite file of its own and prints it. Returns whether b-1 was
 * confirmed once, b-2 expired once, each step and seat command applied once, and the duplicate payment dropped.
 */
export async function processesDemo(options: ProcessesDemoOptions): Promise<boolean> {
  const { amqpUrl, queue } = options;
  const file = join(options.dir, 'processes.db');
  const store = new SqliteTokenStore({ filename: file });
  const http = new HttpSignalSender();
  const dropped = new Set<string>();
  const closing: Array<() => Promise<unknown>> = [];
  try {
    const amqp = await createAmqpTollgate({
      url: amqpUrl,
      store,
      name: 'processes',
      senders: [http],
      // Due timeouts are looked for every 50 ms; the normal pass (re-sending what a crash left) every 500 ms.
      relay: { dueIntervalMs: 50, intervalMs: 500, delayMs: 1_000 },
      observers: [{ dropped: (_endpoint, tokenId) => dropped.add(tokenId) }],
    });
    closing.push(() => amqp.close());
    const seats = await startSeatService(store, amqp.publisher.dispatcher, queue);
    closing.unshift(() => seats.app.close());
    const booking = bookingProcess(queue, seats.url);
    await amqp.consume(queue, countedSteps(booking), { endpoint: 'bookings' });

    console.log('');
    console.log(
      `Business processes: the booking flow on ${file}. The booking process consumes ${queue}; the seat ` +
        `service (${SEATS} seats) is at ${seats.url}.`,
    );
    console.log(
      '  booking placed → seats held (HTTP) → SeatsReserved (AMQP) → payment → confirmed, or expired by a ' +
        'scheduled timeout that the relay sends when due',
    );
    const send = (signal: BookingSignal) =>
      amqp.publisher.publish({ exchange: '', routingKey: queue }, signal);
    const instance = (id: string) => readProcessInstance(store, 'booking', id);
    for (const placed of [PAID, UNPAID]) await send({ type: 'BookingPlaced', ...placed });
    const expiries = new Map<string, string>();
    for (const { bookingId } of [PAID, UNPAID]) {
      // Seen while it waits for its payment: b-2 has a window of a second before its expiry fires.
      await waitFor(
        `${bookingId} to hold its seats`,
        async () => (await instance(bookingId))?.timeouts.length === 1,
      );
      const view = await instance(bookingId);
      expiries.set(bookingId, view?.timeouts[0]?.tokenId ?? '');
      console.log(`  ${bookingId} reserved: ${describeInstance(view, Date.now())}`);
    }

    // b-1's payment, delivered twice: the copy carries the same token and is dropped.
    const payment = (await store.getToken(
      await send({ type: 'PaymentReceived', bookingId: PAID.bookingId }),
    )) as TokenRecord;
    await amqp.publisher.send(payment);
    const applied = (id: string, type: string) => counter(store, `applied/${id}/${type}`);
    await waitFor('b-1 to be confirmed and b-2 to expire', async () => {
      return (
        (await applied(PAID.bookingId, 'SellSeats')) >= 1 &&
        (await applied(UNPAID.bookingId, 'ReleaseSeats')) >= 1 &&
        dropped.has(payment.id)
      );
    });
    console.log(`  ${PAID.bookingId}'s payment was delivered twice: the copy was dropped`);

    const paidExpiry = await store.getToken(expiries.get(PAID.bookingId) ?? '');
    const unpaidExpiry = await store.getToken(expiries.get(UNPAID.bookingId) ?? '');
    const late = (unpaidExpiry?.consumedAt ?? 0) - (unpaidExpiry?.dueAt ?? 0);
    const rows = await Promise.all(
      APPLIED.map(async ([type, where, ...expected]) => ({
        applied: `${type} (${where})`,
        [PAID.bookingId]: await applied(PAID.bookingId, type),
        [UNPAID.bookingId]: await applied(UNPAID.bookingId, type),
        expected: expected.join(', '),
      })),
    );
    console.log('Applications per booking, each counted in the commit that applied it:');
    console.table(rows);
    console.log(
      `  ${PAID.bookingId}: confirmed; its expiry timeout is ${paidExpiry?.status}, in the payment's commit, so it can never fire`,
    );
    console.log(
      `  ${UNPAID.bookingId}: expired; its expiry timeout is ${unpaidExpiry?.status}, applied ${late} ms after ` +
        'its due time (sent by the relay)',
    );
    const free = await counter(store, 'seats/free');
    const ended = await Promise.all([PAID, UNPAID].map(({ bookingId }) => instance(bookingId)));
    console.log(
      `  seats free: ${free} of ${SEATS}; both instances ${ended.every((view) => view === undefined) ? 'finished (deleted)' : 'still running'}`,
    );

    const ok =
      rows.every((row) => row.expected === `${row[PAID.bookingId]}, ${row[UNPAID.bookingId]}`) &&
      paidExpiry?.status === 'revoked' &&
      unpaidExpiry?.status === 'consumed' &&
      free === SEATS - PAID.seats &&
      ended.every((view) => view === undefined);
    console.log(
      ok
        ? `${PAID.bookingId} was confirmed once and ${UNPAID.bookingId} expired once: every step applied exactly once`
        : `MISMATCH in the booking flow: ${JSON.stringify(rows)}`,
    );
    return ok;
  } finally {
    for (const close of closing) await close().catch(() => undefined);
    http.close();
    await store.close();
  }
}
