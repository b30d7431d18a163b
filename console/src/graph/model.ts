import type { ElementDefinition } from 'cytoscape';
import { endpointText } from '../components/endpoint.js';
import { between, shortId } from '../format.js';
import type { ConversationGraph, ConversationNode } from '../types.js';

/** What the graph draws: Cytoscape elements, and how many of them are tokens and parent → child edges. */
export interface GraphModel {
  elements: ElementDefinition[];
  /** Tokens of this store; the boundary markers are not counted. */
  nodeCount: number;
  /** Parent → child edges between two tokens drawn; the dashed boundary edges are not counted. */
  edgeCount: number;
  edges: Array<{ from: string; to: string; time: string }>;
}

const ENDPOINT_CHARS = 30;

/** Long enough to tell endpoints apart, short enough for one line of a node. */
function clip(text: string): string {
  return text.length > ENDPOINT_CHARS ? `${text.slice(0, ENDPOINT_CHARS - 1)}…` : text;
}

/** A URL without its scheme: the label has room for the host and path, not for `http://`. */
function withoutScheme(url: string): string {
  return url.replace(/^[a-z]+:\/\//i, '');
}

/** A node's label, three lines: short id and status, medium (with the HTTP method), endpoint. */
function label(node: ConversationNode): string {
  const destination = node.destination;
  const head = `${shortId(node.id)} · ${node.status}`;
  if (destination?.medium === 'http') {
    return `${head}\nhttp ${destination.method ?? ''}\n${clip(withoutScheme(destination.url ?? ''))}`;
  }
  return `${head}\n${destination?.medium ?? 'no destination'}\n${clip(endpointText(destination))}`;
}

/** Mint → consume time of the child, the edge's label: `42 ms`, or `—` while it is not consumed. */
export function edgeTime(child: ConversationNode): string {
  return between(child.mintedAt, child.consumedAt);
}

/**
 * The conversation as Cytoscape elements. Where it enters this system (a parent kept elsewhere) a marker node
 * "from <parent>" leads into the token with a dashed edge; where it leaves (a destination with an issuer) a
 * dashed edge leads to a marker "to <origin>", one per receiving system.
 */
export function graphModel(graph: ConversationGraph): GraphModel {
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const elements: ElementDefinition[] = graph.nodes.map((node) => ({
    group: 'nodes',
    data: { id: node.id, label: label(node), status: node.status },
    classes: `token status-${node.status}`,
  }));
  const edges: GraphModel['edges'] = [];
  for (const { from, to } of graph.edges) {
    const child = byId.get(to);
    if (!child || !byId.has(from)) continue;
    const time = edgeTime(child);
    edges.push({ from, to, time });
    elements.push({
      group: 'edges',
      data: { id: `edge:${from}:${to}`, source: from, target: to, label: time },
    });
  }
  const markers = new Set<string>();
  const marker = (id: string, text: string) => {
    if (markers.has(id)) return;
    markers.add(id);
    elements.push({ group: 'nodes', data: { id, label: text }, classes: 'boundary' });
  };
  for (const node of graph.nodes) {
    if (node.entersFrom !== undefined) {
      const id = `from:${node.entersFrom}`;
      marker(id, `from ${node.entersFrom}`);
      elements.push({
        group: 'edges',
        data: { id: `enter:${node.id}`, source: id, target: node.id },
        classes: 'boundary',
      });
    }
    if (node.leavesTo !== undefined) {
      const id = `to:${node.leavesTo}`;
      marker(id, `to ${withoutScheme(node.leavesTo)}`);
      elements.push({
        group: 'edges',
        data: { id: `leave:${node.id}`, source: node.id, target: id },
        classes: 'boundary',
      });
    }
  }
  return { elements, nodeCount: graph.nodes.length, edgeCount: edges.length, edges };
}
