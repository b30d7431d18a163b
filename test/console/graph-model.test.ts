import { describe, expect, it } from 'vitest';
import { endpointText, mediumText } from '../../console/src/components/endpoint.js';
import { edgeTime, graphModel } from '../../console/src/graph/model.js';
import type { ConversationGraph, ConversationNode } from '../../console/src/types.js';

const MINTED = '2026-05-04T12:00:00.000Z';

function token(id: string, fields: Partial<ConversationNode> = {}): ConversationNode {
  return {
    id,
    status: 'consumed',
    conversationId: 'conversation-0001',
    mintedBy: 'orders',
    mintedAt: MINTED,
    attempts: 1,
    ...fields,
  };
}

function conversation(nodes: ConversationNode[], edges: ConversationGraph['edges'] = []): ConversationGraph {
  return { id: 'conversation-0001', nodes, edges, truncated: false };
}

describe('endpoint text', () => {
  it('writes an AMQP destination as exchange → routing key and an HTTP one as method and URL', () => {
    expect(endpointText({ medium: 'amqp', exchange: 'orders', routingKey: 'order.created' })).toBe(
      'orders → order.created',
    );
    expect(endpointText({ medium: 'http', method: 'POST', url: 'http://shipping:8080/v1/ship' })).toBe(
      'POST http://shipping:8080/v1/ship',
    );
    expect(mediumText({ medium: 'http', method: 'POST', url: 'http://shipping:8080/v1/ship' })).toBe('http');
  });

  it('writes "—" for a token without a destination or without a medium', () => {
    expect(endpointText(undefined)).toBe('—');
    expect(endpointText({ exchange: 'orders', routingKey: 'order.created' })).toBe('—');
    expect(mediumText(undefined)).toBe('—');
  });

  it('leaves out what a destination lacks', () => {
    expect(endpointText({ medium: 'http', url: 'http://shipping:8080/v1/ship' })).toBe(
      'http://shipping:8080/v1/ship',
    );
    expect(endpointText({ medium: 'amqp', exchange: 'orders' })).toBe('orders → ');
  });
});

describe('edge time', () => {
  it("is the child's time from mint to consume, or — while it is not consumed", () => {
    expect(edgeTime(token('child-0001', { consumedAt: '2026-05-04T12:00:00.042Z' }))).toBe('42 ms');
    expect(edgeTime(token('child-0001', { consumedAt: '2026-05-04T12:03:20.000Z' }))).toBe('3 min 20 s');
    expect(edgeTime(token('child-0001', { status: 'dispatched' }))).toBe('—');
  });
});

describe('the conversation graph model', () => {
  it('draws nothing for a conversation without tokens', () => {
    expect(graphModel(conversation([]))).toEqual({ elements: [], nodeCount: 0, edgeCount: 0, edges: [] });
  });

  it("makes a node per token and an edge per parent → child, labelled with the child's mint → consume time", () => {
    const model = graphModel(
      conversation(
        [
          token('root-token-1', {
            destination: { medium: 'amqp', exchange: 'orders', routingKey: 'order.created' },
            consumedAt: '2026-05-04T12:00:00.010Z',
          }),
          token('child-token-2', {
            parentId: 'root-token-1',
            destination: { medium: 'http', method: 'POST', url: 'http://shipping.example:8080/v1/ship' },
            consumedAt: '2026-05-04T12:00:01.240Z',
          }),
          token('leaf-3', { parentId: 'child-token-2', status: 'pending' }),
        ],
        [
          { from: 'root-token-1', to: 'child-token-2' },
          { from: 'child-token-2', to: 'leaf-3' },
        ],
      ),
    );
    expect(model.elements).toEqual([
      {
        group: 'nodes',
        data: {
          id: 'root-token-1',
          label: 'root-tok… · consumed\namqp\norders → order.created',
          status: 'consumed',
        },
        classes: 'token status-consumed',
      },
      {
        group: 'nodes',
        data: {
          id: 'child-token-2',
          label: 'child-to… · consumed\nhttp POST\nshipping.example:8080/v1/ship',
          status: 'consumed',
        },
        classes: 'token status-consumed',
      },
      {
        group: 'nodes',
        data: { id: 'leaf-3', label: 'leaf-3 · pending\nno destination\n—', status: 'pending' },
        classes: 'token status-pending',
      },
      {
        group: 'edges',
        data: {
          id: 'edge:root-token-1:child-token-2',
          source: 'root-token-1',
          target: 'child-token-2',
          label: '1.2 s',
        },
      },
      {
        group: 'edges',
        data: { id: 'edge:child-token-2:leaf-3', source: 'child-token-2', target: 'leaf-3', label: '—' },
      },
    ]);
    expect(model.nodeCount).toBe(3);
    expect(model.edgeCount).toBe(2);
    expect(model.edges).toEqual([
      { from: 'root-token-1', to: 'child-token-2', time: '1.2 s' },
      { from: 'child-token-2', to: 'leaf-3', time: '—' },
    ]);
  });

  it('cuts an endpoint longer than 30 characters to 29 and an ellipsis, and drops the scheme of a URL', () => {
    const label = (destination: ConversationNode['destination']) =>
      graphModel(conversation([token('tok-0001', { destination })])).elements[0]?.data.label;
    expect(
      label({ medium: 'http', method: 'PUT', url: 'https://a-very-long-host-name.example.com/v1/ship' }),
    ).toBe('tok-0001 · consumed\nhttp PUT\na-very-long-host-name.example…');
    expect(label({ medium: 'http', method: 'GET', url: `http://${'h'.repeat(30)}` })).toBe(
      `tok-0001 · consumed\nhttp GET\n${'h'.repeat(30)}`,
    );
    expect(label({ medium: 'amqp', exchange: 'order-events-exchange', routingKey: 'order.created.v2' })).toBe(
      'tok-0001 · consumed\namqp\norder-events-exchange → order…',
    );
  });

  it('skips an edge to or from a token the answer left out (a truncated conversation), and does not count it', () => {
    const model = graphModel({
      ...conversation(
        [token('kept-0001'), token('kept-0002', { parentId: 'kept-0001' })],
        [
          { from: 'gone-0000', to: 'kept-0001' },
          { from: 'kept-0001', to: 'kept-0002' },
          { from: 'kept-0002', to: 'gone-0003' },
        ],
      ),
      truncated: true,
    });
    expect(model.edges).toEqual([{ from: 'kept-0001', to: 'kept-0002', time: '—' }]);
    expect(model.edgeCount).toBe(1);
    expect(model.elements.filter((element) => element.group === 'edges').map((edge) => edge.data.id)).toEqual(
      ['edge:kept-0001:kept-0002'],
    );
  });

  it('marks where the conversation enters and leaves the system, one marker per parent and per receiving system', () => {
    const model = graphModel(
      conversation([
        token('entry-0001', { entersFrom: 'remote-parent-1' }),
        token('entry-0002', { entersFrom: 'remote-parent-1' }),
        token('exit-0003', { leavesTo: 'http://billing.example:3001' }),
        token('exit-0004', { leavesTo: 'http://billing.example:3001' }),
        token('through-0005', { entersFrom: 'remote-parent-9', leavesTo: 'https://audit.example' }),
      ]),
    );
    expect(model.elements.slice(5)).toEqual([
      {
        group: 'nodes',
        data: { id: 'from:remote-parent-1', label: 'from remote-parent-1' },
        classes: 'boundary',
      },
      {
        group: 'edges',
        data: { id: 'enter:entry-0001', source: 'from:remote-parent-1', target: 'entry-0001' },
        classes: 'boundary',
      },
      {
        group: 'edges',
        data: { id: 'enter:entry-0002', source: 'from:remote-parent-1', target: 'entry-0002' },
        classes: 'boundary',
      },
      {
        group: 'nodes',
        data: { id: 'to:http://billing.example:3001', label: 'to billing.example:3001' },
        classes: 'boundary',
      },
      {
        group: 'edges',
        data: { id: 'leave:exit-0003', source: 'exit-0003', target: 'to:http://billing.example:3001' },
        classes: 'boundary',
      },
      {
        group: 'edges',
        data: { id: 'leave:exit-0004', source: 'exit-0004', target: 'to:http://billing.example:3001' },
        classes: 'boundary',
      },
      {
        group: 'nodes',
        data: { id: 'from:remote-parent-9', label: 'from remote-parent-9' },
        classes: 'boundary',
      },
      {
        group: 'edges',
        data: { id: 'enter:through-0005', source: 'from:remote-parent-9', target: 'through-0005' },
        classes: 'boundary',
      },
      {
        group: 'nodes',
        data: { id: 'to:https://audit.example', label: 'to audit.example' },
        classes: 'boundary',
      },
      {
        group: 'edges',
        data: { id: 'leave:through-0005', source: 'through-0005', target: 'to:https://audit.example' },
        classes: 'boundary',
      },
    ]);
    // The markers and their dashed edges are not tokens, nor parent → child edges.
    expect(model.nodeCount).toBe(5);
    expect(model.edgeCount).toBe(0);
    expect(model.edges).toEqual([]);
  });

  it('gives every element an id of its own, markers included', () => {
    const model = graphModel(
      conversation(
        [
          token('root-0001', { entersFrom: 'remote-parent-1', leavesTo: 'http://billing.example' }),
          token('child-0002', { parentId: 'root-0001', leavesTo: 'http://billing.example' }),
        ],
        [{ from: 'root-0001', to: 'child-0002' }],
      ),
    );
    const ids = model.elements.map((element) => element.data.id);
    expect(ids).toEqual([
      'root-0001',
      'child-0002',
      'edge:root-0001:child-0002',
      'from:remote-parent-1',
      'enter:root-0001',
      'to:http://billing.example',
      'leave:root-0001',
      'leave:child-0002',
    ]);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
