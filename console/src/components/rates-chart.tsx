import { rate } from '../format.js';
import type { RatePoint } from '../types.js';

type Series = 'minted' | 'consumed' | 'duplicates' | 'deadLettered' | 'redispatched';

/** Each series has its own colour and its own dash pattern, and the legend names it: colour is never the only cue. */
const SERIES: Array<{ key: Series; label: string }> = [
  { key: 'minted', label: 'minted' },
  { key: 'consumed', label: 'consumed' },
  { key: 'duplicates', label: 'duplicates' },
  { key: 'deadLettered', label: 'dead-lettered' },
  { key: 'redispatched', label: 'redispatched' },
];

const WIDTH = 600;
const HEIGHT = 160;
const PAD = { top: 10, right: 10, bottom: 20, left: 44 };

/**
 * Per-second rates over the last minutes as an SVG line chart. Its text summary (the caption) says what a reader
 * of the lines would take from it: the latest and the peak rate of each series.
 */
export function RatesChart({ points, intervalSeconds }: { points: RatePoint[]; intervalSeconds: number }) {
  if (points.length === 0) {
    return (
      <p class="muted">
        No rate samples yet: the first one comes {intervalSeconds} s after the gateway started counting.
      </p>
    );
  }
  const peak = Math.max(1, ...points.flatMap((p) => SERIES.map((s) => p[s.key])));
  const x = (i: number) =>
    PAD.left + (points.length === 1 ? 0 : (i / (points.length - 1)) * (WIDTH - PAD.left - PAD.right));
  const y = (value: number) => PAD.top + (1 - value / peak) * (HEIGHT - PAD.top - PAD.bottom);
  const minutes = Math.max(1, Math.round((points.length * intervalSeconds) / 60));
  const summary = SERIES.map((s) => {
    const values = points.map((p) => p[s.key]);
    return `${s.label} ${rate(values[values.length - 1] ?? 0)} (peak ${rate(Math.max(...values))})`;
  }).join(', ');
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-describedby="rates-caption" class="chart-svg">
        <title>Rates per second, last {minutes} min</title>
        <line class="chart-axis" x1={PAD.left} x2={WIDTH - PAD.right} y1={y(0)} y2={y(0)} />
        <line class="chart-grid" x1={PAD.left} x2={WIDTH - PAD.right} y1={y(peak)} y2={y(peak)} />
        <text class="chart-label" x={PAD.left - 6} y={y(peak) + 4} text-anchor="end">
          {rate(peak)}
        </text>
        <text class="chart-label" x={PAD.left - 6} y={y(0) + 4} text-anchor="end">
          0
        </text>
        <text class="chart-label" x={PAD.left} y={HEIGHT - 4}>
          {minutes} min ago
        </text>
        <text class="chart-label" x={WIDTH - PAD.right} y={HEIGHT - 4} text-anchor="end">
          now
        </text>
        {SERIES.map((s) => (
          <polyline
            key={s.key}
            class={`chart-line chart-${s.key}`}
            points={points.map((p, i) => `${x(i).toFixed(1)},${y(p[s.key]).toFixed(1)}`).join(' ')}
          />
        ))}
      </svg>
      <ul class="chart-legend" aria-hidden="true">
        {SERIES.map((s) => (
          <li key={s.key}>
            <svg viewBox="0 0 24 8" class="chart-key" aria-hidden="true">
              <line class={`chart-line chart-${s.key}`} x1="0" x2="24" y1="4" y2="4" />
            </svg>
            {s.label}
          </li>
        ))}
      </ul>
      <figcaption id="rates-caption">
        Rates per second over the last {minutes} min, sampled every {intervalSeconds} s: {summary}.
      </figcaption>
    </figure>
  );
}
