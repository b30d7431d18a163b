import type { Channel, ChannelModel } from 'amqplib';
import { connect } from 'amqplib';
import type { TokenStore } from '../src/core/store.js';
import { TOKEN_STATUSES, type TokenRecord, type TokenStatus } from '../src/core/token.js';
import { queues } from './options.js';
import { postgresAdmin } from './postgres-admin.js';
import { appliedKey, ownTableSql, type Role, type SoakPayload } from './shared.js';

/* Reading what the run left behind: tokens in the store, messages in the queues, what the handlers applied. */

/**
 * How many times each hop applied each signal, as the handlers recorded it (the store-specific bit; see
 * applicationCounter in soak/worker.ts): the key-value state, or on PostgreSQL the application's own table,
 * read whole once.
 */
export async function applicationCounts(
  store: TokenStore,
  ownSchema: string | undefined,
): Promise<(role: Role, id: string) => Promise<number>> {
  if (ownSchema === undefined) {
    return async (role, id) => Number((await store.readState(appliedKey(role, id)))?.value ?? 0);
  }
  const { rows } = await postgresAdmin((client) =>
    client.query<{ hop: string; signal: string; applications: number }>(ownTableSql(ownSchema).readAll),
  );
  const counts = new Map(rows.map((row) => [`${row.hop}/${row.signal}`, row.applications]));
  return async (role, id) => counts.get(`${role}/${id}`) ?? 0;
}

export function isPoisonedHop2(token: TokenRecord, poisonIds: ReadonlySet<string>): boolean {
  const payload = token.payload as SoakPayload | undefined;
  const destination = token.destination;
  return (
    payload?.poison === true &&
    poisonIds.has(payload.id) &&
    destination?.medium === 'amqp' &&
    destination.routingKey === queues.hop2
  );
}

export async function liveTokens(store: TokenStore): Promise<TokenRecord[]> {
  const tokens: TokenRecord[] = [];
  for (const status of ['issued', 'pending', 'dispatched'] as const) {
    let cursor: string | undefined;
    for (let page = 0; page < 1_000; page++) {
      const result = await store.listByStatus(status, { limit: 500, ...(cursor ? { cursor } : {}) });
      tokens.push(...result.items);
      cursor = result.cursor;
      if (!cursor) break;
    }
  }
  return tokens;
}

export async function tokenRows(
  store: TokenStore,
): Promise<{ total: number; byStatus: Partial<Record<TokenStatus, number>> }> {
  const byStatus: Partial<Record<TokenStatus, number>> = {};
  let total = 0;
  for (const status of TOKEN_STATUSES) {
    let cursor: string | undefined;
    let n = 0;
    for (let page = 0; page < 10_000; page++) {
      const result = await store.listByStatus(status, { limit: 1_000, ...(cursor ? { cursor } : {}) });
      n += result.items.length;
      cursor = result.cursor;
      if (!cursor) break;
    }
    if (n > 0) byStatus[status] = n;
    total += n;
  }
  return { total, byStatus };
}

/** A plain amqplib connection for inspecting the soak's queues; reopened whenever it was closed. */
export class Probe {
  private open: Promise<{ model: ChannelModel; channel: Channel }> | undefined;
  private live: { model: ChannelModel; channel: Channel } | undefined;

  constructor(private readonly url: string) {}

  async channel(): Promise<Channel> {
    if (!this.open) {
      this.open = (async () => {
        const model = await connect(this.url);
        model.on('error', () => undefined);
        const channel = await model.createChannel();
        channel.on('error', () => undefined);
        const live = { model, channel };
        const lost = () => {
          if (this.live === live) this.live = undefined;
          this.open = undefined;
        };
        model.on('close', lost);
        channel.on('close', lost);
        this.live = live;
        return live;
      })();
      this.open.catch(() => {
        this.open = undefined;
      });
    }
    return (await this.open).channel;
  }

  /** Ready messages in a queue, or -1 if the broker could not be asked. */
  async messageCount(queue: string): Promise<number> {
    try {
      return (await (await this.channel()).checkQueue(queue)).messageCount;
    } catch {
      return -1;
    }
  }

  async close(): Promise<void> {
    const live = this.live;
    this.live = undefined;
    this.open = undefined;
    await live?.model.close().catch(() => undefined);
  }
}

/** Takes every message off a dead-letter queue: the distinct logical signals in it, and how many copies. */
export async function drainIds(
  channel: Channel,
  queue: string,
): Promise<{ ids: Set<string>; messages: number }> {
  const ids = new Set<string>();
  let messages = 0;
  for (let i = 0; i < 1_000_000; i++) {
    const message = await channel.get(queue, { noAck: true });
    if (message === false) break;
    messages += 1;
    try {
      const payload = JSON.parse(message.content.toString('utf8')) as SoakPayload;
      ids.add(payload.id);
    } catch {
      ids.add(`(unparseable #${messages})`);
    }
  }
  return { ids, messages };
}

export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await run(item);
      }
    }),
  );
}
