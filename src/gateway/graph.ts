import type { TokenStore } from '../core/store.js';
import type { TokenRecord } from '../core/token.js';
import { tokenView } from '../transports/http/index.js';
import type { ConversationGraph, ConversationNode } from './schemas.js';

/** A conversation graph shows at most this many tokens (10 store pages). */
const MAX_GRAPH_NODES = 10_000;

/**
 * This store's part of a conversation as a graph: tokens as nodes, parent → child edges, and where the
 * conversation crosses the boundary of this system. A token whose parent this store does not keep is where it
 * ENTERS (another system issued it here, naming its own token as the parent); a token whose destination names an
 * issuer is where it LEAVES (the receiver keeps the rest in its own store). Undefined for an unknown conversation.
 */
export async function conversationGraph(
  store: TokenStore,
  id: string,
): Promise<ConversationGraph | undefined> {
  const tokens: TokenRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listConversation(id, { limit: 1000, ...(cursor ? { cursor } : {}) });
    tokens.push(...page.items);
    cursor = page.cursor;
  } while (cursor !== undefined && tokens.length < MAX_GRAPH_NODES);
  if (tokens.length === 0) return undefined;
  const outside = await parentsKeptElsewhere(store, tokens);
  const nodes = tokens.map((token) => node(token, outside));
  const edges = tokens
    .filter((t) => t.parentId !== undefined)
    .map((t) => ({ from: t.parentId as string, to: t.id }));
  return { id, nodes, edges, truncated: cursor !== undefined };
}

function node(token: TokenRecord, outside: ReadonlySet<string>): ConversationNode {
  const view: ConversationNode = tokenView(token);
  if (token.parentId !== undefined && outside.has(token.parentId)) view.entersFrom = token.parentId;
  const issuer = token.destination?.medium === 'http' ? token.destination.issuer : undefined;
  if (issuer !== undefined) view.leavesTo = originOf(issuer.url);
  return view;
}

/**
 * Parents named by the tokens but kept by no record of this store. Most parents are among the tokens already
 * read; only the rest (usually the one entry point, or a parent beyond a truncated answer) cost a read each.
 */
async function parentsKeptElsewhere(
  store: TokenStore,
  tokens: readonly TokenRecord[],
): Promise<ReadonlySet<string>> {
  const here = new Set(tokens.map((t) => t.id));
  const unseen = new Set<string>();
  for (const token of tokens) {
    if (token.parentId !== undefined && !here.has(token.parentId)) unseen.add(token.parentId);
  }
  const outside = new Set<string>();
  for (const parentId of unseen) {
    if (!(await store.getToken(parentId))) outside.add(parentId);
  }
  return outside;
}

/** The system a destination's issuer belongs to: its origin, without the path or any credential in the URL. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
