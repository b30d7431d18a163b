import { describe, expect, it } from 'vitest';
import { conversationHref, href, parseRoute, type Route, tokenHref } from '../../console/src/routes.js';

describe('console routes', () => {
  it('opens the overview for an empty hash, a bare "#", "#/" and "#/overview"', () => {
    for (const hash of ['', '#', '#/', '#//', '#/overview', 'overview']) {
      expect(parseRoute(hash)).toEqual({ view: 'overview' });
    }
  });

  it('reads each view from its hash, ignoring empty segments', () => {
    expect(parseRoute('#/search')).toEqual({ view: 'search' });
    expect(parseRoute('#/processes')).toEqual({ view: 'processes' });
    expect(parseRoute('#/token/tok-0001')).toEqual({ view: 'token', id: 'tok-0001' });
    expect(parseRoute('#//token//tok-0001/')).toEqual({ view: 'token', id: 'tok-0001' });
    expect(parseRoute('#/conversation/conv-0001')).toEqual({ view: 'conversation', id: 'conv-0001' });
    expect(parseRoute('#/process/order-saga/order-42')).toEqual({
      view: 'process',
      name: 'order-saga',
      id: 'order-42',
    });
    expect(parseRoute('#/search?q=ignored')).toEqual({ view: 'search' });
  });

  it('answers "unknown" with the hash itself for a path it does not know or with the wrong number of parts', () => {
    for (const hash of [
      '#/nowhere',
      '#/Token/tok-0001',
      '#/token',
      '#/token/',
      '#/token/a/b',
      '#/conversation',
      '#/process/order-saga',
      '#/process/order-saga/order-42/extra',
      '#/overview/extra',
      '#/stuck/pending',
      '#/search/tok-0001',
    ]) {
      expect(parseRoute(hash)).toEqual({ view: 'unknown', hash });
    }
  });

  it('decodes each segment after splitting, so an encoded "/" stays inside the id', () => {
    expect(parseRoute('#/token/a%2Fb')).toEqual({ view: 'token', id: 'a/b' });
    expect(parseRoute('#/process/order%20saga/x%3Fy')).toEqual({
      view: 'process',
      name: 'order saga',
      id: 'x?y',
    });
  });

  it('keeps a segment whose escape is malformed as it is written instead of failing', () => {
    expect(parseRoute('#/token/%E0%A4%A')).toEqual({ view: 'token', id: '%E0%A4%A' });
    expect(parseRoute('#/conversation/100%')).toEqual({ view: 'conversation', id: '100%' });
  });

  it("reads the stuck list's filter from the query", () => {
    expect(parseRoute('#/stuck')).toEqual({ view: 'stuck', filter: {} });
    expect(parseRoute('#/stuck?status=issued&olderThan=90&conversation=conv%200001')).toEqual({
      view: 'stuck',
      filter: { status: 'issued', olderThanSeconds: 90, conversation: 'conv 0001' },
    });
    expect(parseRoute('#/stuck?olderThan=0')).toEqual({ view: 'stuck', filter: { olderThanSeconds: 0 } });
    expect(parseRoute('#/stuck?olderThan=2.5')).toEqual({ view: 'stuck', filter: { olderThanSeconds: 2.5 } });
  });

  it('drops what it cannot use: an unknown status, an age below 0 or not finite, an empty conversation', () => {
    for (const query of [
      'status=bogus',
      'status=Pending',
      'status=',
      'olderThan=-5',
      'olderThan=Infinity',
      'olderThan=ten',
      'conversation=',
    ]) {
      expect(parseRoute(`#/stuck?${query}`)).toEqual({ view: 'stuck', filter: {} });
    }
    expect(parseRoute('#/stuck?status=bogus&olderThan=60')).toEqual({
      view: 'stuck',
      filter: { olderThanSeconds: 60 },
    });
  });

  it('leaves an empty or blank age out, so the view uses its default as when there is none (not 0)', () => {
    for (const query of ['olderThan', 'olderThan=', 'olderThan=%20', 'olderThan=+', 'olderThan=%09']) {
      expect(parseRoute(`#/stuck?${query}`)).toEqual(parseRoute('#/stuck'));
    }
    expect(parseRoute('#/stuck?status=issued&olderThan=')).toEqual({
      view: 'stuck',
      filter: { status: 'issued' },
    });
  });

  it('writes each route as its hash, ids URL-encoded', () => {
    expect(href({ view: 'overview' })).toBe('#/overview');
    expect(href({ view: 'search' })).toBe('#/search');
    expect(href({ view: 'processes' })).toBe('#/processes');
    expect(href({ view: 'token', id: 'a/b?c' })).toBe('#/token/a%2Fb%3Fc');
    expect(href({ view: 'conversation', id: 'conv 1' })).toBe('#/conversation/conv%201');
    expect(href({ view: 'process', name: 'order saga', id: 'x/y' })).toBe('#/process/order%20saga/x%2Fy');
    expect(href({ view: 'unknown', hash: '#/nowhere' })).toBe('#/nowhere');
    expect(tokenHref('tok-0001')).toBe('#/token/tok-0001');
    expect(conversationHref('conv#1')).toBe('#/conversation/conv%231');
  });

  it("writes the stuck list's filter as a query, without the parts it does not set", () => {
    expect(href({ view: 'stuck', filter: {} })).toBe('#/stuck');
    expect(href({ view: 'stuck', filter: { status: 'pending' } })).toBe('#/stuck?status=pending');
    expect(href({ view: 'stuck', filter: { olderThanSeconds: 0 } })).toBe('#/stuck?olderThan=0');
    expect(href({ view: 'stuck', filter: { conversation: '' } })).toBe('#/stuck');
    expect(
      href({ view: 'stuck', filter: { status: 'expired', olderThanSeconds: 30, conversation: 'a&b=c' } }),
    ).toBe('#/stuck?status=expired&olderThan=30&conversation=a%26b%3Dc');
  });

  it('reads back every route it writes', () => {
    const routes: Route[] = [
      { view: 'overview' },
      { view: 'search' },
      { view: 'processes' },
      { view: 'stuck', filter: {} },
      { view: 'stuck', filter: { status: 'scheduled', olderThanSeconds: 0.5, conversation: 'a&b #?/ü' } },
      { view: 'token', id: 'tok_0001-AB' },
      { view: 'token', id: 'a/b?c#d%e f' },
      { view: 'conversation', id: 'ünïcödé/conv' },
      { view: 'process', name: 'order/saga', id: '100%' },
      { view: 'unknown', hash: '#/nowhere' },
    ];
    for (const route of routes) {
      expect(parseRoute(href(route))).toEqual(route);
    }
  });
});
