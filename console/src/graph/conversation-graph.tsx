import cytoscape from 'cytoscape';
import dagre from 'cytoscape-dagre';
import { useEffect, useRef } from 'preact/hooks';
import type { ConversationGraph } from '../types.js';
import { graphModel } from './model.js';
import { graphStyle } from './style.js';

cytoscape.use(dagre);

/**
 * Cytoscape adds an inline <style> to the page unless an element with this id exists; the CSP forbids inline
 * styles, so a marker stands in and the rule it would add (`position: relative` on the container) is in
 * styles.css.
 */
const CYTOSCAPE_STYLESHEET_ID = '__________cytoscape_stylesheet';

function markCytoscapeStylesheet(): void {
  if (document.getElementById(CYTOSCAPE_STYLESHEET_ID)) return;
  const marker = document.createElement('meta');
  marker.id = CYTOSCAPE_STYLESHEET_ID;
  document.head.append(marker);
}

/**
 * The conversation drawn left to right by the dagre layout. Once laid out, the container carries what the browser
 * tests read: `data-node-count`, `data-edge-count`, `data-render-ms` (from the answer's arrival to the first
 * paint after the layout) and `data-ready`.
 */
export function ConversationGraphView({
  graph,
  receivedAt,
  selected,
  onSelect,
}: {
  graph: ConversationGraph;
  /** performance.now() when the answer arrived. */
  receivedAt: number;
  selected: string | undefined;
  onSelect: (id: string) => void;
}) {
  const container = useRef<HTMLDivElement>(null);
  const instance = useRef<cytoscape.Core | undefined>(undefined);
  const select = useRef(onSelect);
  select.current = onSelect;

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    markCytoscapeStylesheet();
    delete element.dataset.ready;
    const model = graphModel(graph);
    // The layout runs inside the constructor, before anything is drawn: laying out after a first preset paint
    // would draw every node twice. Textures while panning keep a graph of hundreds of nodes responsive.
    const layout = {
      name: 'dagre',
      rankDir: 'LR',
      nodeSep: 24,
      rankSep: 80,
      edgeSep: 12,
      fit: true,
      padding: 24,
    } as cytoscape.LayoutOptions;
    const cy = cytoscape({
      container: element,
      elements: model.elements,
      style: graphStyle(),
      layout,
      autoungrabify: true,
      boxSelectionEnabled: false,
      selectionType: 'single',
      textureOnViewport: true,
      hideEdgesOnViewport: model.nodeCount > 100,
      // Low enough to fit a conversation of hundreds of tokens; labels are not drawn that small anyway.
      minZoom: 0.02,
      maxZoom: 3,
    });
    instance.current = cy;
    cy.on('tap', 'node.token', (event) => select.current(event.target.id()));
    cy.one('render', () => {
      element.dataset.nodeCount = String(model.nodeCount);
      element.dataset.edgeCount = String(model.edgeCount);
      element.dataset.renderMs = String(Math.round(performance.now() - receivedAt));
      element.dataset.ready = 'true';
    });
    // The container narrows when the details panel opens beside it: the drawing follows and fits again.
    let observed = false;
    const resized = new ResizeObserver(() => {
      // The observer also reports the size it starts with, which the layout has just fitted.
      if (!observed) {
        observed = true;
        return;
      }
      cy.resize();
      cy.fit(undefined, 24);
    });
    resized.observe(element);
    return () => {
      resized.disconnect();
      instance.current = undefined;
      cy.destroy();
    };
  }, [graph, receivedAt]);

  useEffect(() => {
    const cy = instance.current;
    if (!cy) return;
    cy.$(':selected').unselect();
    if (selected) cy.getElementById(selected).select();
  }, [selected, graph]);

  return (
    <div
      ref={container}
      class="graph"
      data-testid="graph"
      role="img"
      aria-label="Graph of the conversation; the Signals and Edges tables below list the same tokens and edges."
    />
  );
}
