import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { lazyRequestLogger } from '../../src/gateway/request-loggers.js';

function capture(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const logger = pino({ level }, stream);
  return { logger, lines };
}

describe('lazyRequestLogger', () => {
  it('builds no child for lines the level drops, and writes the others with the bindings', () => {
    const { logger, lines } = capture('warn');
    const child = vi.spyOn(logger, 'child');
    const log = lazyRequestLogger(logger, { reqId: 'req-1' }, {});

    log.info({ token: 't1' }, 'dropped');
    log.debug('dropped too');
    expect(child).not.toHaveBeenCalled();
    expect(log.level).toBe('warn');

    log.warn({ token: 't2' }, 'kept');
    log.error('kept %s', 'too');
    expect(child).toHaveBeenCalledTimes(1);
    expect(lines).toMatchObject([
      { reqId: 'req-1', token: 't2', msg: 'kept', level: 40 },
      { reqId: 'req-1', msg: 'kept too', level: 50 },
    ]);
  });

  it('lets a changed level decide once the child exists', () => {
    const { logger, lines } = capture('warn');
    const log = lazyRequestLogger(logger, { reqId: 'req-2' }, {});
    log.level = 'debug';
    log.debug('now written');
    expect(logger.level).toBe('warn');
    expect(lines).toMatchObject([{ reqId: 'req-2', msg: 'now written' }]);
  });

  it("builds a child at once when fastify passes options (a route's own log level)", () => {
    const { logger } = capture('warn');
    const child = vi.spyOn(logger, 'child');
    lazyRequestLogger(logger, { reqId: 'req-3' }, { level: 'info' });
    expect(child).toHaveBeenCalledWith({ reqId: 'req-3' }, { level: 'info' });
  });

  it('serves as fastify.childLoggerFactory: request lines carry the request id', async () => {
    const { logger, lines } = capture('info');
    const app = Fastify({ loggerInstance: logger, childLoggerFactory: lazyRequestLogger });
    app.get('/hello', async (request) => {
      request.log.info({ step: 'handler' }, 'inside');
      return { ok: true };
    });
    const response = await app.inject({ method: 'GET', url: '/hello' });
    await app.close();
    expect(response.statusCode).toBe(200);
    const inside = lines.find((line) => line.msg === 'inside');
    const completed = lines.find((line) => line.msg === 'request completed');
    expect(inside?.reqId).toEqual(expect.any(String));
    expect(completed?.reqId).toBe(inside?.reqId);
  });
});
