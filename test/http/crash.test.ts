import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TokenStore } from '../../src/core/store.js';
import { openStore, type StoreConfig } from '../../src/stores/open.js';
import { createHttpRelay, HttpEdgeClient, HttpSignalSender } from '../../src/transports/http/index.js';
import { freshStoreConfig, STORE_KINDS } from '../support/stores.js';
import { buildTestApp } from './fixtures/app.js';
import { type Child, listen, runFixture, stablePort } from './support.js';

/** Patient enough to outlive a server restart (a few seconds), as a real client's retries would. */
const PATIENT = { attempts: 40, baseDelayMs: 100, maxDelayMs: 500 };

/**
 * Real processes killed with SIGKILL at the protocol's crash points (TOLLGATE_CRASH_AT), then restarted:
 * after the retries every signal is applied exactly once.
 */
describe.each(STORE_KINDS)('HTTP hop surviving kill -9 on %s', (kind) => {
  let config: StoreConfig;
  let store: TokenStore;
  const children: Child[] = [];
  const apps: FastifyInstance[] = [];

  beforeEach(async () => {
    config = freshStoreConfig(kind);
    store = await openStore(config);
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGTERM');
      await child.exited;
    }
    for (const app of apps.splice(0)) await app.close();
    await store.close();
  });

  async function startServer(port: number, crashAt?: string): Promise<Child> {
    const env: Record<string, string> = { TOLLGATE_STORE: JSON.stringify(config), PORT: String(port) };
    if (crashAt) env.TOLLGATE_CRASH_AT = crashAt;
    const child = runFixture('server.ts', env);
    children.push(child);
    await child.line(/listening (\d+)/);
    return child;
  }

  async function killedBySelf(child: Child): Promise<void> {
    const exit = await child.exited;
    expect(exit.signal, child.output()).toBe('SIGKILL');
  }

  it.each([
    ['before-commit', false],
    ['before-respond', true],
  ] as const)(
    'receiver killed %s: the client retry is applied once',
    async (crashAt, committedBeforeCrash) => {
      const port = await stablePort();
      const url = `http://127.0.0.1:${port}/add`;
      const crashing = await startServer(port, crashAt);
      const edge = new HttpEdgeClient({
        store,
        sender: new HttpSignalSender({ retry: PATIENT, timeoutMs: 5_000 }),
      });
      const payload = { key: `crash-${crashAt}`, amount: 5 };
      const token = await edge.mint({ method: 'POST', url }, payload);
      const delivering = edge.deliver(token);

      await killedBySelf(crashing);
      expect((await store.getToken(token.id))?.status).toBe(committedBeforeCrash ? 'consumed' : 'pending');
      expect((await store.readState(payload.key))?.value).toBe(committedBeforeCrash ? 5 : undefined);

      await startServer(port);
      const delivery = await delivering;
      expect(delivery.outcome).toBe(committedBeforeCrash ? 'duplicate' : 'processed');
      expect(JSON.parse(delivery.body)).toEqual({ key: payload.key, total: 5 });
      expect((await store.readState(payload.key))?.value).toBe(5);
      expect((await store.readState(`runs:${payload.key}`))?.value).toBe(1);
      edge.close();
    },
  );

  it.each([
    ['after-commit', false],
    ['after-dispatch', true],
  ] as const)(
    'receiver killed %s of what it emitted: the relay sends it, the next hop applies it once',
    async (crashAt, sentBeforeCrash) => {
      const downstream = await buildTestApp({ store });
      apps.push(downstream);
      const next = `${await listen(downstream)}/add`;
      const port = await stablePort();
      const url = `http://127.0.0.1:${port}/add`;
      const crashing = await startServer(port, crashAt);
      const edge = new HttpEdgeClient({
        store,
        sender: new HttpSignalSender({ retry: PATIENT, timeoutMs: 5_000 }),
      });
      const key = `emitter-${crashAt}`;
      const token = await edge.mint({ method: 'POST', url }, { key, amount: 3, next });
      const delivering = edge.deliver(token);

      await killedBySelf(crashing);
      const emitted = (await store.listConversation(token.conversationId)).items.find(
        (t) => t.parentId === token.id,
      );
      // after-commit: nothing went out, the token waits for the relay. after-dispatch: the next hop consumed it
      // but the mark never happened; a late copy of it is dropped below.
      expect(emitted?.status).toBe(sentBeforeCrash ? 'consumed' : 'pending');
      expect((await store.readState(`${key}.next`))?.value).toBe(sentBeforeCrash ? 3 : undefined);

      await startServer(port);
      expect((await delivering).outcome).toBe('duplicate');
      const { relay } = createHttpRelay({
        store,
        delayMs: 0,
        sender: new HttpSignalSender({ retry: PATIENT }),
      });
      expect(await relay.runOnce()).toMatchObject({ claimed: sentBeforeCrash ? 0 : 1, failed: 0 });
      expect((await store.getToken(emitted!.id))?.status).toBe('consumed');
      const lateCopy = {
        ...emitted!,
        status: 'pending' as const,
        payload: { key: `${key}.next`, amount: 3 },
      };
      expect((await new HttpSignalSender({ retry: PATIENT }).deliver(lateCopy)).outcome).toBe('duplicate');
      expect((await store.readState(key))?.value).toBe(3);
      expect((await store.readState(`${key}.next`))?.value).toBe(3);
      expect((await store.readState(`runs:${key}.next`))?.value).toBe(1);
      await relay.stop();
      edge.close();
    },
  );

  it('sender killed after minting, before sending: the relay sends it, a second copy is dropped', async () => {
    const receiver = await buildTestApp({ store });
    apps.push(receiver);
    const url = `${await listen(receiver)}/add`;
    const sender = runFixture('sender.ts', {
      TOLLGATE_STORE: JSON.stringify(config),
      TARGET_URL: url,
      PAYLOAD: JSON.stringify({ key: 'edge-crash', amount: 8 }),
      TOLLGATE_CRASH_AT: 'before-send',
    });
    children.push(sender);
    const [, tokenId] = await sender.line(/minted (\S+)/);
    await killedBySelf(sender);
    expect((await store.getToken(tokenId!))?.status).toBe('pending');
    expect(await store.readState('edge-crash')).toBeUndefined();

    const { relay, sender: relaySender } = createHttpRelay({ store, delayMs: 0 });
    expect(await relay.runOnce()).toMatchObject({ claimed: 1, dispatched: 1 });
    // A relay elsewhere that still holds the token's old copy sends it again: the receiver drops it.
    const stale = await store.getToken(tokenId!);
    const again = await relaySender.deliver({ ...stale!, payload: { key: 'edge-crash', amount: 8 } });
    expect(again.outcome).toBe('duplicate');
    expect((await store.readState('edge-crash'))?.value).toBe(8);
    expect((await store.readState('runs:edge-crash'))?.value).toBe(1);
    await relay.stop();
  });

  it('sender process runs to the end without a crash', async () => {
    const receiver = await buildTestApp({ store });
    apps.push(receiver);
    const url = `${await listen(receiver)}/add`;
    const sender = runFixture('sender.ts', {
      TOLLGATE_STORE: JSON.stringify(config),
      TARGET_URL: url,
      PAYLOAD: JSON.stringify({ key: 'edge-ok', amount: 1 }),
    });
    children.push(sender);
    await sender.line(/delivered processed/);
    expect((await sender.exited).code).toBe(0);
    expect((await store.readState('edge-ok'))?.value).toBe(1);
  });
});
