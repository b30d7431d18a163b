/**
 * The memory soak's curve (soak/memory.ts): token rows by status and RSS over time as an SVG drawn here, and a PNG
 * of it taken by headless Chromium through playwright-core.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MemoryRun } from './memory.js';

const WIDTH = 960;
const PANEL = 250;
const MARGIN = { left: 80, right: 250, top: 80, gap: 70, bottom: 50 };
const HEIGHT = MARGIN.top + 2 * PANEL + MARGIN.gap + MARGIN.bottom;

interface Series {
  label: string;
  color: string;
  values: number[];
  dashed?: boolean;
}

/** 1, 2 or 5 times a power of ten: about `count` ticks from 0 to max. */
function ticks(max: number, count = 5): number[] {
  if (max <= 0) return [0];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? power * 10;
  const out: number[] = [];
  for (let v = 0; v < max + step; v += step) out.push(v);
  return out;
}

const number = (n: number) =>
  n >= 1_000_000
    ? `${+(n / 1_000_000).toFixed(2)}M`
    : n >= 1_000
      ? `${+(n / 1_000).toFixed(1)}k`
      : `${+n.toFixed(1)}`;
const xml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function panel(
  top: number,
  title: string,
  unit: string,
  times: number[],
  series: Series[],
  tMax: number,
): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const yMax = Math.max(1, ...series.flatMap((s) => s.values)) * 1.05;
  const yTicks = ticks(yMax);
  const yTop = yTicks.at(-1) ?? yMax;
  const x = (t: number) => MARGIN.left + (t / tMax) * plotWidth;
  const y = (v: number) => top + PANEL - (v / yTop) * PANEL;
  const parts: string[] = [];
  parts.push(`<text x="${MARGIN.left}" y="${top - 12}" class="title">${xml(title)}</text>`);
  for (const v of yTicks) {
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`,
    );
    parts.push(
      `<text x="${MARGIN.left - 8}" y="${y(v) + 4}" class="tick" text-anchor="end">${number(v)}</text>`,
    );
  }
  for (const t of ticks(tMax, 8)) {
    if (t > tMax * 1.001) continue;
    parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${top + PANEL}" y2="${top + PANEL + 5}" class="axis"/>`);
    parts.push(
      `<text x="${x(t)}" y="${top + PANEL + 20}" class="tick" text-anchor="middle">${number(t)}</text>`,
    );
  }
  parts.push(`<rect x="${MARGIN.left}" y="${top}" width="${plotWidth}" height="${PANEL}" class="frame"/>`);
  parts.push(
    `<text x="${MARGIN.left - 60}" y="${top + PANEL / 2}" class="tick" transform="rotate(-90 ${MARGIN.left - 60} ${top + PANEL / 2})" text-anchor="middle">${xml(unit)}</text>`,
  );
  series.forEach((s, k) => {
    const points = s.values.map((v, i) => `${x(times[i] as number).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(
      `<polyline points="${points}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    const ly = top + 16 + k * 20;
    const lx = MARGIN.left + plotWidth + 14;
    parts.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    parts.push(`<text x="${lx + 28}" y="${ly}" class="legend">${xml(s.label)}</text>`);
  });
  return parts.join('\n');
}

export function renderPlot(run: MemoryRun): string {
  const { samples, summary, options } = run;
  const times = samples.map((s) => s.t);
  const tMax = Math.max(1, ...times);
  const expected = samples.map(() => summary.expectedSteadyRows);
  const rows = panel(
    MARGIN.top,
    `Token rows by status (retention ${options.retentionS} s)`,
    'rows',
    times,
    [
      { label: 'all token rows', color: '#1f4e79', values: samples.map((s) => s.totalRows) },
      { label: 'consumed', color: '#2e8b57', values: samples.map((s) => s.rows.consumed) },
      {
        label: 'in flight',
        color: '#d2691e',
        values: samples.map((s) => s.rows.pending + s.rows.dispatched + s.rows.issued + s.rows.scheduled),
      },
      { label: '2 × rate × (retention + 60 s)', color: '#888888', values: expected, dashed: true },
    ],
    tMax,
  );
  const memory = panel(
    MARGIN.top + PANEL + MARGIN.gap,
    'Memory of the process (store, hops, relay)',
    'MB',
    times,
    [
      { label: 'RSS', color: '#8b0000', values: samples.map((s) => s.rssMb) },
      { label: 'JS heap used', color: '#6a5acd', values: samples.map((s) => s.heapUsedMb) },
      { label: 'SQLite file', color: '#2f4f4f', values: samples.map((s) => s.dbMb), dashed: true },
    ],
    tMax,
  );
  const heading =
    `${number(options.signals)} signals on SQLite, two exactly-once hops each: ${summary.seconds.toFixed(0)} s, ` +
    `${summary.signalsPerSecond.toFixed(0)} signals/s`;
  const sub = `commit ${run.commit} · ${run.machine.cpus} × ${run.machine.model} · Node ${run.machine.node} · ${run.command}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}">
<title>${escapeXml(heading)}: token rows by status and process memory over time</title>
<style>
  text { font-family: 'DejaVu Sans', Arial, sans-serif; fill: #222; }
  .heading { font-size: 17px; font-weight: bold; }
  .sub { font-size: 11px; fill: #555; }
  .title { font-size: 14px; font-weight: bold; }
  .tick { font-size: 11px; fill: #444; }
  .legend { font-size: 12px; }
  .grid { stroke: #e4e4e4; stroke-width: 1; }
  .axis { stroke: #444; stroke-width: 1; }
  .frame { fill: none; stroke: #444; stroke-width: 1; }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="${MARGIN.left}" y="26" class="heading">${xml(heading)}</text>
<text x="${MARGIN.left}" y="44" class="sub">${xml(sub)}</text>
${rows}
${memory}
<text x="${MARGIN.left + (WIDTH - MARGIN.left - MARGIN.right) / 2}" y="${HEIGHT - 12}" class="tick" text-anchor="middle">seconds since the first signal</text>
</svg>
`;
}

/** A PNG of the SVG, from headless Chromium (/usr/bin/chromium) with a fresh profile. */
export async function screenshotSvg(svgPath: string, pngPath: string): Promise<void> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'tollgate-plot-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: WIDTH, height: HEIGHT },
  });
  try {
    const page = await context.newPage();
    await page.setContent(`<html><body style="margin:0">${readFileSync(svgPath, 'utf8')}</body></html>`, {
      waitUntil: 'load',
    });
    await page.locator('svg').screenshot({ path: pngPath });
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/** Re-renders a run's SVG and PNG from its JSON: npx tsx soak/memory-plot.ts docs/soak-memory */
if (process.argv[1]?.endsWith('memory-plot.ts')) {
  const base = process.argv[2] ?? 'docs/soak-memory';
  const run = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as MemoryRun;
  const { writeFileSync } = await import('node:fs');
  writeFileSync(`${base}.svg`, renderPlot(run));
  await screenshotSvg(`${base}.svg`, `${base}.png`);
  console.log(`wrote ${base}.svg and ${base}.png`);
}

/** Text for an SVG element: the heading names the command, which may hold `<` or `&`. */
function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
