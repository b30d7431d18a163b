import type { StylesheetJson } from 'cytoscape';
import { STATUSES } from '../types.js';

/**
 * The status colours come from the stylesheet's custom properties (`--status-<s>` and `--status-<s>-fill`), the
 * same ones the badges and the legend use, so the graph and the text around it cannot disagree.
 */
function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

export function graphStyle(): StylesheetJson {
  const text = cssVar('--text', '#1a1d21');
  const muted = cssVar('--muted', '#4a5260');
  const font = cssVar('--font', 'system-ui, sans-serif');
  return [
    {
      selector: 'node.token',
      style: {
        shape: 'round-rectangle',
        width: 180,
        height: 58,
        'background-color': '#ffffff',
        'border-width': 2,
        'border-color': muted,
        label: 'data(label)',
        color: text,
        'font-family': font,
        'font-size': 11,
        'text-wrap': 'wrap',
        'text-max-width': '168px',
        'text-valign': 'center',
        'text-halign': 'center',
        'line-height': 1.3,
        // Labels too small to read are not drawn: a large graph zoomed out to fit paints much sooner.
        'min-zoomed-font-size': 7,
      },
    },
    ...STATUSES.map((status) => ({
      selector: `node.status-${status}`,
      style: {
        'background-color': cssVar(`--status-${status}-fill`, '#ffffff'),
        'border-color': cssVar(`--status-${status}`, muted),
      },
    })),
    {
      selector: 'node.boundary',
      style: {
        shape: 'rhomboid',
        width: 210,
        height: 40,
        'background-color': '#ffffff',
        'border-width': 2,
        'border-style': 'dashed',
        'border-color': muted,
        label: 'data(label)',
        color: text,
        'font-family': font,
        'font-size': 11,
        'text-wrap': 'ellipsis',
        'text-max-width': '160px',
        'text-valign': 'center',
        'text-halign': 'center',
        'min-zoomed-font-size': 7,
      },
    },
    {
      selector: 'node:selected',
      style: {
        'border-width': 4,
        'border-color': cssVar('--focus', '#1f4fd1'),
        'underlay-color': cssVar('--focus', '#1f4fd1'),
        'underlay-opacity': 0.15,
        'underlay-padding': 6,
      },
    },
    {
      selector: 'edge',
      style: {
        width: 1.5,
        'line-color': muted,
        'target-arrow-color': muted,
        'target-arrow-shape': 'triangle',
        'curve-style': 'bezier',
        label: 'data(label)',
        color: text,
        'font-family': font,
        'font-size': 10,
        'text-background-color': '#ffffff',
        'text-background-opacity': 1,
        'text-background-padding': '2px',
        'min-zoomed-font-size': 7,
      },
    },
    {
      selector: 'edge.boundary',
      style: { 'line-style': 'dashed', label: '' },
    },
  ];
}
