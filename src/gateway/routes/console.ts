import { existsSync } from 'node:fs';
import { join, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { ProblemError } from '../../transports/http/index.js';

/**
 * The page may load its own script, style, images and fonts and call its own origin, nothing else: no inline
 * script or style, no framing, no form posts, no <base>. `data:` images cover the empty favicon.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** The page names its assets by content hash: it is revalidated every time, they never change. */
const PAGE_CACHE = 'no-cache';
const ASSET_CACHE = 'public, max-age=31536000, immutable';

export const CONSOLE_NOT_BUILT = 'the console is not built: run npm run build:console';

export interface ConsoleOptions {
  /** The built console: `index.html` and `assets/` (see console-files.ts). */
  dir: string;
}

/**
 * The web console: `GET /console` is the page, `/console/assets/*` its script and style, gzipped ahead of time.
 * No API key is needed: the page holds no data, and calls the API with the key its user types in. Every answer
 * under /console carries the security headers, problems included. A gateway started before the console was built
 * answers `console-unavailable` there (the check is made once, at start).
 */
export const consoleRoutes: FastifyPluginAsync<ConsoleOptions> = async (app, { dir }) => {
  app.addHook('onRequest', async (_request, reply) => {
    reply.headers(SECURITY_HEADERS);
  });
  const hidden = { schema: { hide: true } };

  if (!existsSync(join(dir, 'index.html'))) {
    app.log.warn({ dir }, `${CONSOLE_NOT_BUILT}; /console answers 503 until the gateway restarts`);
    const unavailable = async () => {
      throw new ProblemError('console-unavailable', CONSOLE_NOT_BUILT);
    };
    for (const url of ['/console', '/console/', '/console/*']) app.get(url, hidden, unavailable);
    return;
  }

  const assets = join(dir, 'assets');
  await app.register(fastifyStatic, {
    root: assets,
    prefix: '/console/assets/',
    // Sends `app-<hash>.js.gz` to a browser that accepts gzip, the plain file to others.
    preCompressed: true,
    index: false,
    dotfiles: 'deny',
    cacheControl: false,
    setHeaders: (res, path) => {
      res.setHeader('cache-control', path.startsWith(assets + sep) ? ASSET_CACHE : PAGE_CACHE);
      res.setHeader('vary', 'accept-encoding');
    },
  });
  const page = async (_request: unknown, reply: FastifyReply) => reply.sendFile('index.html', dir);
  app.get('/console', hidden, page);
  app.get('/console/', hidden, page);
};
