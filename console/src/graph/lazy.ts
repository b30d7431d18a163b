import type { ConversationGraphView } from './conversation-graph.js';

let loading: Promise<typeof ConversationGraphView> | undefined;

/**
 * Cytoscape and dagre are most of the console's JavaScript and only the conversation view needs them: they come in
 * a chunk of their own, fetched the first time a conversation opens (once; a failed fetch is tried again next time).
 */
export function loadGraphView(): Promise<typeof ConversationGraphView> {
  loading ??= import('./conversation-graph.js').then(
    (module) => module.ConversationGraphView,
    (error: unknown) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}
