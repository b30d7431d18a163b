import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { buildGateway } from '../../src/gateway/app.js';
import { loadConfig } from '../../src/gateway/config/index.js';
import { builtConsoleDir } from '../../src/gateway/console-files.js';
import { createLogger } from '../../src/gateway/logging.js';
import type { GatewayApp } from '../../src/gateway/routing.js';
import { ADMIN_KEY, bearer, KEYS, LogCapture, READ_KEY, sqliteStore } from './support.js';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE =
  '<!doctype html><title>console</title><script type="module" src="/console/assets/app-T3ST.js"></script>';
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(2000))});`;

/** A console as the build lays it out: index.html and hashed assets, each with a gzipped twin. */
function builtConsole(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-console-'));
  mkdirSync(join(dir, 'assets'));
  const files: Record<string, string> = {
    'index.html': PAGE,
    'assets/app-T3ST.js': SCRIPT,
    'assets/app-T3ST.css': 'body { margin: 0 }',
  };
  for (const [path, content] of Object.entries(files)) {
    writeFileSync(join(dir, path), content);
    writeFileSync(join(dir, `${path}.gz`), gzipSync(content));
  }
  return dir;
}

const open: GatewayApp[] = [];
afterEach(async () => {
  for (const app of open.splice(0)) await app.close();
});

async function gateway(consoleDir: string, enabled = true) {
  const logs = new LogCapture();
  const store = sqliteStore();
  const app = buildGateway({
    store,
    publisher: null,
    registry: new Registry(),
    logger: createLogger('info', logs),
    consoleDir,
    config: {
      apiKeys: KEYS,
      bridges: { ingress: [], egress: [] },
      bodyLimitBytes: 64 * 1024,
      defaultTokenTtlMs: 60 * 60 * 1000,
      console: { enabled },
    },
  });
  app.addHook('onClose', async () => store.close());
  await app.ready();
  open.push(app);
  return { app, logs };
}

function expectSecurityHeaders(res: { headers: Record<string, unknown> }) {
  expect(res.headers['content-security-policy']).toBe(CSP);
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  expect(res.headers['referrer-policy']).toBe('no-referrer');
}

describe('the console route', () => {
  it('serves the page at /console without an API key, revalidated on every load, under the CSP', async () => {
    const { app } = await gateway(builtConsole());
    for (const url of ['/console', '/console/']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.body).toBe(PAGE);
      expectSecurityHeaders(res);
    }
    const gzipped = await app.inject({ url: '/console', headers: { 'accept-encoding': 'gzip' } });
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gzipped.headers['cache-control']).toBe('no-cache');
    expect(gunzipSync(gzipped.rawPayload).toString('utf8')).toBe(PAGE);
    const head = await app.inject({ method: 'HEAD', url: '/console' });
    expect(head.statusCode).toBe(200);
  });

  it('serves hashed assets as immutable, gzipped ahead of time to browsers that accept it', async () => {
    const { app } = await gateway(builtConsole());
    const gzipped = await app.inject({
      url: '/console/assets/app-T3ST.js',
      headers: { 'accept-encoding': 'gzip, deflate, br' },
    });
    expect(gzipped.statusCode).toBe(200);
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gzipped.headers['content-type']).toMatch(/^(application|text)\/javascript/);
    expect(gzipped.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(gzipped.headers.vary).toBe('accept-encoding');
    expect(gunzipSync(gzipped.rawPayload).toString('utf8')).toBe(SCRIPT);
    expectSecurityHeaders(gzipped);

    const plain = await app.inject({ url: '/console/assets/app-T3ST.js' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body).toBe(SCRIPT);
    const style = await app.inject({ url: '/console/assets/app-T3ST.css' });
    expect(style.headers['content-type']).toMatch(/^text\/css/);
    expect(style.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });

  it('answers problems under the same headers: an unknown asset, a path out of the folder, a wrong method', async () => {
    const { app } = await gateway(builtConsole());
    const missing = await app.inject({ url: '/console/assets/app-GONE.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().type).toBe('/problems/not-found');
    expectSecurityHeaders(missing);

    // Out of the assets folder: refused, never the page.
    const outside = await app.inject({ url: '/console/assets/..%2findex.html' });
    expect([400, 403, 404]).toContain(outside.statusCode);
    expect(outside.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(outside.body).not.toContain('<!doctype');
    expectSecurityHeaders(outside);

    const post = await app.inject({ method: 'POST', url: '/console' });
    expect(post.statusCode).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await app.inject({ method: 'DELETE', url: '/console/assets/app-T3ST.js' })).headers.allow).toBe(
      'GET, HEAD',
    );
  });

  it('answers console-unavailable (503) when the console was not built', async () => {
    const { app, logs } = await gateway(mkdtempSync(join(tmpdir(), 'tollgate-console-empty-')));
    for (const url of ['/console', '/console/', '/console/assets/app-T3ST.js']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({
        type: '/problems/console-unavailable',
        code: 'TOLLGATE_ERR_CONSOLE_UNAVAILABLE',
        detail: 'the console is not built: run npm run build:console',
      });
      expectSecurityHeaders(res);
    }
    expect(logs.text).toContain('the console is not built');
  });

  it('is not served at all when console.enabled is false', async () => {
    const { app } = await gateway(builtConsole(), false);
    const res = await app.inject({ url: '/console' });
    expect(res.statusCode).toBe(404);
    expect(res.json().type).toBe('/problems/not-found');
    expect(loadConfig({ TOLLGATE_CONSOLE_ENABLED: 'false' }).console).toEqual({ enabled: false });
    expect(loadConfig({}).console).toEqual({ enabled: true });
  });

  it('never writes the API key the page sends into the request log', async () => {
    const { app, logs } = await gateway(builtConsole());
    for (const key of [READ_KEY, ADMIN_KEY]) {
      await app.inject({ url: '/console', headers: bearer(key) });
      await app.inject({ url: '/console/assets/app-T3ST.js', headers: bearer(key) });
      expect((await app.inject({ url: '/v1/overview', headers: bearer(key) })).statusCode).toBe(200);
      await app.inject({ url: '/v1/overview', headers: { 'x-api-key': key } });
    }
    expect(logs.lines.length).toBeGreaterThan(0);
    expect(logs.text).not.toContain(READ_KEY);
    expect(logs.text).not.toContain(ADMIN_KEY);
  });

  it('finds the built console under the package root, wherever the process was started', () => {
    expect(builtConsoleDir()).toBe(join(resolve(import.meta.dirname, '../..'), 'dist', 'console'));
  });
});
