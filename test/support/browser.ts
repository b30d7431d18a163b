import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

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
