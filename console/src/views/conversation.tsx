import { useEffect, useRef, useState } from 'preact/hooks';
import { endpointText, mediumText } from '../components/endpoint.js';
import { ProblemAlert } from '../components/problem-alert.js';
import { StatusBadge } from '../components/status-badge.js';
import { TokenRecord } from '../components/token-record.js';
import { shortId } from '../format.js';
import type { ConversationGraphView } from '../graph/conversation-graph.js';
import { loadGraphView } from '../graph/lazy.js';
import { graphModel } from '../graph/model.js';
import { tokenHref } from '../routes.js';
import { STATUS_MEANING } from '../statuses.js';
import { type ConversationGraph, type ConversationNode, STATUSES } from '../types.js';
import { useResource } from '../use-resource.js';

/**
 * A conversation as a graph of its tokens (parent → child), with two tables that say the same in text: one row
 * per token, one per edge. Choosing a token, in the graph or in the table, shows its record beside the graph.
 */
export function ConversationPage({ id }: { id: string }) {
  const { resource } = useResource(`conversation/${id}`, (api) => api.conversation(id));
  const graphView = useGraphView();
  const [selected, setSelected] = useState<string>();
  useEffect(() => setSelected(undefined), [id]);
  return (
    <>
      <h1 id="main-heading" tabIndex={-1}>
        Conversation <code>{id}</code>
      </h1>
      {resource.state === 'loading' && <p class="muted">Loading…</p>}
      {resource.state === 'failed' && (
        <ProblemAlert error={resource.error} notFound={`Conversation ${id} not found.`} />
      )}
      {resource.state === 'ready' && (
        <Conversation
          graphView={graphView}
          graph={resource.data}
          receivedAt={resource.receivedAt}
          selected={selected}
          onSelect={setSelected}
        />
      )}
    </>
  );
}

type GraphView =
  | { state: 'loading' }
  | { state: 'ready'; View: typeof ConversationGraphView }
  | { state: 'failed' };

/** The graph's code, fetched while the conversation itself loads. */
function useGraphView(): GraphView {
  const [view, setView] = useState<GraphView>({ state: 'loading' });
  useEffect(() => {
    let current = true;
    loadGraphView().then(
      (View) => current && setView({ state: 'ready', View }),
      () => current && setView({ state: 'failed' }),
    );
    return () => {
      current = false;
    };
  }, []);
  return view;
}

function Conversation({
  graphView,
  graph,
  receivedAt,
  selected,
  onSelect,
}: {
  graphView: GraphView;
  graph: ConversationGraph;
  receivedAt: number;
  selected: string | undefined;
  onSelect: (id: string | undefined) => void;
}) {
  const model = graphModel(graph);
  const node = graph.nodes.find((n) => n.id === selected);
  const enters = graph.nodes.filter((n) => n.entersFrom !== undefined).length;
  const leaves = graph.nodes.filter((n) => n.leavesTo !== undefined).length;
  return (
    <>
      <p>
        {model.nodeCount} {model.nodeCount === 1 ? 'token' : 'tokens'}, {model.edgeCount} parent → child{' '}
        {model.edgeCount === 1 ? 'edge' : 'edges'}
        {enters > 0 && `, enters this system at ${enters}`}
        {leaves > 0 && `, leaves it at ${leaves}`}.
      </p>
      {graph.truncated && (
        <p role="note" class="note">
          This conversation has more tokens than one answer holds: the graph shows the first{' '}
          {graph.nodes.length}.
        </p>
      )}
      <Legend />
      <div class={node ? 'graph-area graph-area-open' : 'graph-area'}>
        {graphView.state === 'ready' && (
          <graphView.View graph={graph} receivedAt={receivedAt} selected={selected} onSelect={onSelect} />
        )}
        {graphView.state === 'loading' && <p class="graph graph-message muted">Loading the graph…</p>}
        {graphView.state === 'failed' && (
          <p role="alert" class="graph graph-message">
            The graph's code could not be loaded; the tables below list the same tokens and edges. Reload the
            page to try again.
          </p>
        )}
        {node && <Details node={node} onClose={() => onSelect(undefined)} />}
      </div>
      <SignalsTable nodes={graph.nodes} onSelect={onSelect} />
      <h2 id="edges-heading">Edges</h2>
      <table class="table" aria-label="Edges">
        <thead>
          <tr>
            <th scope="col">From</th>
            <th scope="col">To</th>
            <th scope="col">Time</th>
          </tr>
        </thead>
        <tbody>
          {model.edges.length === 0 && (
            <tr>
              <td colSpan={3} class="muted">
                No parent → child edge: every token here is a root or entered from outside.
              </td>
            </tr>
          )}
          {model.edges.map((edge) => (
            <tr key={`${edge.from}/${edge.to}`} data-from={edge.from} data-to={edge.to}>
              <td>
                <code>{edge.from}</code>
              </td>
              <td>
                <code>{edge.to}</code>
              </td>
              <td>{edge.time}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function Legend() {
  return (
    <div class="legend">
      <h2 class="visually-hidden">Legend</h2>
      <ul class="legend-list">
        {STATUSES.map((status) => (
          <li key={status}>
            <StatusBadge status={status} /> <span class="muted">{STATUS_MEANING[status]}</span>
          </li>
        ))}
        <li>
          <span class="legend-boundary" aria-hidden="true" /> dashed: where the conversation enters or leaves
          this system. Edge labels: time from mint to consume.
        </li>
      </ul>
    </div>
  );
}

function SignalsTable({ nodes, onSelect }: { nodes: ConversationNode[]; onSelect: (id: string) => void }) {
  return (
    <>
      <h2 id="signals-heading">Signals</h2>
      <table class="table" aria-label="Signals">
        <thead>
          <tr>
            <th scope="col">Token</th>
            <th scope="col">Status</th>
            <th scope="col">Medium</th>
            <th scope="col">Endpoint</th>
            <th scope="col">Parent</th>
            <th scope="col">Boundary</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((node) => (
            <tr key={node.id} data-node-id={node.id}>
              <td>
                <button
                  type="button"
                  class="link-button"
                  aria-label={`Show details of ${node.id}`}
                  onClick={() => onSelect(node.id)}
                >
                  <code>{node.id}</code>
                </button>
              </td>
              <td>
                <StatusBadge status={node.status} />
              </td>
              <td>{mediumText(node.destination)}</td>
              <td class="endpoint">{endpointText(node.destination)}</td>
              <td>{node.parentId ? <code title={node.parentId}>{shortId(node.parentId)}</code> : '—'}</td>
              <td>
                {[
                  node.entersFrom !== undefined && `enters from ${node.entersFrom}`,
                  node.leavesTo !== undefined && `leaves to ${node.leavesTo}`,
                ]
                  .filter(Boolean)
                  .join('; ') || '—'}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/** The chosen token's full record (never a payload: the API has none to give). */
function Details({ node, onClose }: { node: ConversationNode; onClose: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [node.id]);
  return (
    <aside class="details" aria-label="Token details">
      <div class="details-head">
        <h2 ref={heading} tabIndex={-1}>
          Token <code>{node.id}</code>
        </h2>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
      <p>
        <a href={tokenHref(node.id)}>Open the token's page</a>
      </p>
      {node.leavesTo !== undefined && (
        <p>
          Leaves this system for <code>{node.leavesTo}</code>.
        </p>
      )}
      <TokenRecord token={node} parentOutside={node.entersFrom !== undefined} />
    </aside>
  );
}
