import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { pendingToken } from '../../src/core/mint.js';
import { openStore } from '../../src/stores/open.js';
import { freshStoreConfig, STORE_KINDS } from '../support/stores.js';

const run = promisify(execFile);

describe.each(STORE_KINDS)('several processes on one %s store', (kind) => {
  it('consume every token exactly once while racing on the same tokens and the same state', async () => {
    const config = freshStoreConfig(kind);
    const store = await openStore(config);
    const tokens = Array.from({ length: 120 }, (_, n) =>
      pendingToken(
        { destination: { medium: 'amqp', exchange: 'x', routingKey: 'k' }, payload: { n } },
        {
          mintedBy: 'edge',
          now: Date.now(),
        },
      ),
    );
    for (let i = 0; i < tokens.length; i += 50) await store.mint(tokens.slice(i, i + 50));
    const env = {
      ...process.env,
      STORE_CONFIG: JSON.stringify(config),
      TOKENS: JSON.stringify(tokens.map((t) => ({ id: t.id, payload: t.payload }))),
    };
    const children = await Promise.all(
      [1, 2, 3].map(() =>
        run(process.execPath, ['--import', 'tsx', 'test/stores/fixtures/consume-all.ts'], { env }),
      ),
    );
    const results = children.map((c) => JSON.parse(c.stdout) as { processed: number; dropped: number });
    expect(results.reduce((sum, r) => sum + r.processed, 0)).toBe(tokens.length);
    expect(results.reduce((sum, r) => sum + r.dropped, 0)).toBe(tokens.length * 2);
    expect((await store.readState('total'))?.value).toBe(tokens.length);
    expect((await store.inFlightStats()).count).toBe(0);
    await store.close();
  });
});
