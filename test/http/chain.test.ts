import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/core/dispatcher.js';
import type { TokenStore } from '../../src/core/store.js';
import type { TokenRecord } from '../../src/core/token.js';
import { openStore, type StoreConfig } from '../../src/stores/open.js';
import { createHttpRelay, HttpEdgeClient, HttpSignalSender } from '../../src/transports/http/index.js';
import { freshStoreConfig, STORE_KINDS } from '../support/stores.js';
import { buildTestApp } from './fixtures/app.js';
import { listen, post, tokenHeader } from './support.js';

const QUICK = { attempts: 5, baseDelayMs: 10, maxDelayMs: 50 };
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/**
 * Two "systems", each its own fastify server with its own connection to the shared store:
 * edge → A (/add, emits to B) → B (/add). Duplicates are injected at every hop.
 */
describe.each(STORE_KINDS)('a chain of two HTTP hops on %s', (kind) => {
  let config: StoreConfig;
  const stores: TokenStore[] = [];
  const apps: FastifyInstance[] = [];

  beforeEach(() => {
    config = freshStoreConfig(kind);
  });

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    for (const store of stores.splice(0)) await store.close();
  });

  async function system(
    withDispatcher: boolean,
  ): Promise<{ store: TokenStore; url: string; traces: Array<string | undefined> }> {
    const store = await openStore(config);
    stores.push(store);
    const dispatcher = new Dispatcher({ store, senders: [new HttpSignalSender({ retry: QUICK })] });
    const app = await buildTestApp({ store, ...(withDispatcher ? { dispatcher } : {}) });
    apps.push(app);
    const traces: Array<string | undefined> = [];
    app.addHook('onRequest', async (request) => {
      traces.push(request.headers.traceparent as string | undefined);
    });
    return { store, url: `${await listen(app)}/add`, traces };
  }

  async function conversationOf(store: TokenStore, conversationId: string): Promise<TokenRecord[]> {
    return (await store.listConversation(conversationId)).items;
  }

  it('applies each hop once, whatever copies of each signal arrive', async () => {
    const b = await system(true);
    const a = await system(true);
    const edge = new HttpEdgeClient({ store: a.store, sender: new HttpSignalSender({ retry: QUICK }) });
    const payload = { key: 'chain', amount: 6, next: b.url };
    const token = await edge.mint({ method: 'POST', url: a.url }, payload, {
      headers: { traceparent: TRACEPARENT },
    });

    // The first hop, ten times at once (a retrying client, a proxy replaying, a relay...).
    const firstHop = await Promise.all(Array.from({ length: 10 }, () => edge.deliver(token)));
    expect(firstHop.filter((d) => d.outcome === 'processed')).toHaveLength(1);
    expect(firstHop.filter((d) => d.outcome === 'duplicate')).toHaveLength(9);

    const tokens = await conversationOf(a.store, token.conversationId);
    const second = tokens.find((t) => t.parentId === token.id);
    expect(second).toMatchObject({ status: 'consumed', consumedBy: 'adder', mintedBy: 'adder' });
    expect(tokens).toHaveLength(2);

    // The second hop's signal again, as a relay or a retried dispatch would send it, concurrently with edge copies.
    const copyOfSecond: TokenRecord = {
      ...second!,
      status: 'pending',
      payload: { key: 'chain.next', amount: 6 },
      headers: { traceparent: TRACEPARENT },
    };
    const sender = new HttpSignalSender({ retry: QUICK });
    const copies = await Promise.all([
      ...Array.from({ length: 5 }, () => sender.deliver(copyOfSecond)),
      ...Array.from({ length: 5 }, () => edge.deliver(token)),
    ]);
    expect(copies.every((d) => d.outcome === 'duplicate')).toBe(true);

    expect(b.traces.length).toBeGreaterThan(1);
    expect(b.traces.every((trace) => trace === TRACEPARENT)).toBe(true);
    expect((await a.store.readState('chain'))?.value).toBe(6);
    expect((await a.store.readState('runs:chain'))?.value).toBe(1);
    expect((await b.store.readState('chain.next'))?.value).toBe(6);
    expect((await b.store.readState('runs:chain.next'))?.value).toBe(1);
  });

  it('lets the store decide between copies racing on two servers: one commit wins, the others replay', async () => {
    const one = await system(false);
    const two = await system(false);
    const payload = { key: 'raced', amount: 4 };
    const edge = new HttpEdgeClient({ store: one.store });
    const token = await edge.mint({ method: 'POST', url: one.url }, payload);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        post(i % 2 === 0 ? one.url : two.url, payload, tokenHeader(token.id)),
      ),
    );
    const statuses = answers.map((a) => a.headers.get('exactly-once-status'));
    expect(statuses.filter((s) => s === 'processed')).toHaveLength(1);
    expect(statuses.filter((s) => s === 'duplicate')).toHaveLength(9);
    for (const answer of answers) expect(answer.json).toEqual({ key: 'raced', total: 4 });
    expect((await two.store.readState('runs:raced'))?.value).toBe(1);
  });

  it('lets the relay carry the second hop when system A sends nothing itself, and propagates the trace', async () => {
    const b = await system(true);
    const a = await system(false);
    const payload = { key: 'relayed-chain', amount: 2, next: b.url };
    const edge = new HttpEdgeClient({ store: a.store, sender: new HttpSignalSender({ retry: QUICK }) });
    const token = await edge.mint({ method: 'POST', url: a.url }, payload, {
      headers: { traceparent: TRACEPARENT },
    });
    expect((await edge.deliver(token)).outcome).toBe('processed');

    const pending = (await conversationOf(a.store, token.conversationId)).find(
      (t) => t.parentId === token.id,
    );
    expect(pending).toMatchObject({ status: 'pending', headers: { traceparent: TRACEPARENT } });

    // Two relays in two processes' worth of stores race for the same pending token; copies are dropped.
    const relays = [a.store, b.store].map(
      (store) => createHttpRelay({ store, delayMs: 0, sender: new HttpSignalSender({ retry: QUICK }) }).relay,
    );
    await Promise.all(relays.map((relay) => relay.runOnce()));
    const direct = await post(b.url, { key: 'relayed-chain.next', amount: 2 }, tokenHeader(pending!.id));
    expect(direct.headers.get('exactly-once-status')).toBe('duplicate');

    expect((await a.store.getToken(pending!.id))?.status).toBe('consumed');
    expect((await b.store.readState('relayed-chain.next'))?.value).toBe(2);
    expect((await b.store.readState('runs:relayed-chain.next'))?.value).toBe(1);
    for (const relay of relays) await relay.stop();
  });
});
