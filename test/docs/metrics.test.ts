import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { METRIC_NAMES, MetricsObserver } from '../../src/gateway/metrics.js';
import { testStore } from '../../src/testing/sqlite.js';

const docs = join(resolve(import.meta.dirname, '../..'), 'docs');
const METRIC_NAME = /\btollgate_[a-z_]+_(?:total|seconds|flight)\b/g;

function namesIn(file: string): Set<string> {
  return new Set(readFileSync(join(docs, file), 'utf8').match(METRIC_NAME) ?? []);
}

describe('the metrics the docs name', () => {
  it('are the ones the gateway registers, and gateway.md lists every one', async () => {
    const store = testStore();
    try {
      const registry = new Registry();
      new MetricsObserver(registry, store);
      const registered = registry.getMetricsAsArray().map((metric) => metric.name);
      expect([...registered].sort()).toEqual([...METRIC_NAMES].sort());
    } finally {
      await store.close();
    }

    for (const file of readdirSync(docs).filter((name) => name.endsWith('.md'))) {
      const stale = [...namesIn(file)].filter((name) => !METRIC_NAMES.includes(name));
      expect(stale, `${file} names metrics the gateway does not export`).toEqual([]);
    }
    const listed = namesIn('gateway.md');
    expect(METRIC_NAMES.filter((name) => !listed.has(name))).toEqual([]);
  });
});
