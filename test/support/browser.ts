import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';

/** Debian's Chromium (`apt-get install chromium`, as scripts/setup.sh does); Playwright downloads no browser. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Flags that keep the test browser off the network and quiet: no background requests, component updates, sync
 * or QUIC probes; no sandbox (tests may run as root in a container) and no GPU (headless machines have none).
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Where screenshots go: gitignored; CI keeps the folder as an artifact. */
export const SCREENSHOTS = join(ROOT, 'test-results', 'console');

export interface TestBrowser {
  context: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Headless Chromium with a fresh profile in a temp folder, removed by close(). */
export async function launchBrowser(): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (installs chromium)`);
  const profile = mkdtempSync(join(tmpdir(), 'tollgate-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS],
      viewport: { width: 1280, height: 800 },
    });
    return {
      context,
      close: async () => {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Saves a screenshot as test-results/console/<name>.png and returns its path: the whole page, or only the viewport
 * (`fullPage: false`; a long page with a large canvas takes seconds to capture whole).
 */
export async function screenshot(
  page: Page,
  name: string,
  options: { fullPage?: boolean } = {},
): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: options.fullPage ?? true });
  return path;
}

/** What went wrong in a page: Content-Security-Policy violations, uncaught errors, console errors. */
export interface PageTrouble {
  csp: string[];
  errors: string[];
  consoleErrors: string[];
}

/**
 * Records a page's CSP violations (the `securitypolicyviolation` event, reported through a binding that the
 * page's CSP cannot block), uncaught exceptions and console errors. Call before the first navigation.
 */
export async function watchPage(page: Page): Promise<PageTrouble> {
  const trouble: PageTrouble = { csp: [], errors: [], consoleErrors: [] };
  await page.exposeBinding('__tollgateCspViolation', (_source, text: string) => {
    trouble.csp.push(text);
  });
  await page.addInitScript(`addEventListener('securitypolicyviolation', (e) =>
    __tollgateCspViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' (' +
      (e.sourceFile || 'page') + ')'));`);
  page.on('pageerror', (error) => trouble.errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    // Chrome logs every failed fetch (the gateway down, a 401 or 404 the page asked for) as a console error;
    // the page shows those itself. A CSP refusal is logged too, and caught by its own event above.
    if (/Failed to load resource|net::ERR_/.test(text)) return;
    trouble.consoleErrors.push(text);
  });
  return trouble;
}

const require = createRequire(import.meta.url);
let axeSource: string | undefined;

/** An axe-core violation, as the report gives it, with the selectors of its nodes. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * Runs axe-core in the page and returns its serious and critical violations. The library is evaluated through
 * the DevTools protocol, which the page's CSP does not govern, so the console needs no exception for it.
 */
export async function seriousA11yViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  const loaded = await page.evaluate('typeof globalThis.axe');
  if (loaded !== 'object') await page.evaluate(axeSource);
  const violations = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) =>
    r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => n.target.join(' ')) })))`)) as AxeViolation[];
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export { until } from './until.js';

/** Goes to a view by its hash, as a click on a link would. */
export async function go(page: Page, hash: string): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
}

/** An element's text, trimmed ('' when it has none). */
export async function text(locator: Locator): Promise<string> {
  return ((await locator.textContent()) ?? '').trim();
}

/** Waits for a `role="alert"` holding every one of `parts`, and returns its text. */
export async function alertWith(page: Page, ...parts: string[]): Promise<string> {
  let alert = page.getByRole('alert');
  for (const part of parts) alert = alert.filter({ hasText: part });
  await alert.first().waitFor();
  return text(alert.first());
}

/** The rows of a table as their attribute values, in order. */
export async function rowAttributes(page: Page, table: string, attribute: string): Promise<string[]> {
  return page
    .getByRole('table', { name: table, exact: true })
    .locator(`tbody tr[${attribute}]`)
    .evaluateAll((rows, name) => rows.map((row) => row.getAttribute(name) ?? ''), attribute);
}

/** Presses Tab until the focused element satisfies `test` (an expression on `e`, the active element). */
export async function tabTo(page: Page, test: string, maxTabs = 60): Promise<void> {
  for (let i = 0; i < maxTabs; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(`(() => { const e = document.activeElement; return !!e && (${test}); })()`))
      return;
  }
  throw new Error(`no focusable element matched ${test} within ${maxTabs} tabs`);
}

/** A `tabTo` test: the element's accessible name (aria-label, else its text) is exactly `name`. */
export const named = (name: string) =>
  `((e.getAttribute('aria-label') || e.textContent || '').trim() === ${JSON.stringify(name)})`;

/** The little of Cytoscape's API that cytoscapeNodeCenter uses. */
interface CytoscapeCore {
  getElementById(id: string): { length: number; renderedPosition(): { x: number; y: number } };
}

/**
 * Where a node of a Cytoscape graph is on the page (viewport coordinates of its centre), to click it as a user
 * would: the graph is a canvas, so its nodes have no elements. Cytoscape keeps its instance on its container
 * (`_cyreg.cy`), `container` or one of its descendants. Undefined when the graph has no such node.
 */
export async function cytoscapeNodeCenter(
  container: Locator,
  id: string,
): Promise<{ x: number; y: number } | undefined> {
  return container.evaluate((root, nodeId) => {
    const host = [root, ...Array.from(root.querySelectorAll('*'))].find(
      (el) => (el as unknown as { _cyreg?: { cy?: unknown } })._cyreg?.cy,
    );
    if (!host) return undefined;
    const node = (host as unknown as { _cyreg: { cy: CytoscapeCore } })._cyreg.cy.getElementById(nodeId);
    if (node.length === 0) return undefined;
    const box = host.getBoundingClientRect();
    const at = node.renderedPosition();
    return { x: box.left + at.x, y: box.top + at.y };
  }, id);
}
