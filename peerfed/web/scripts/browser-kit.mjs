// Shared pieces for the scripts that drive the built client in headless Chromium (issue 13):
// launching the system browser, and an accessibility audit (axe-core, WCAG 2.2 A and AA rules)
// of whatever the page shows now. Each script audits every screen it reaches.

import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 900 };

/** A persistent Chromium context on `profile` (the system browser at /usr/bin/chromium). */
export function launch(profile, { viewport = PHONE, ...options } = {}) {
  return chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
    viewport,
    ...options,
  });
}

/**
 * Run axe-core on the page as it is now and return its violations as plain records
 * ({ screen, id, impact, help, targets }). The page's CSP forbids foreign scripts, so axe is
 * evaluated through the DevTools protocol (page.evaluate), which a CSP does not govern.
 */
export async function audit(page, screen) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const result = await globalThis.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
      resultTypes: ['violations'],
    });
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
  return violations.map((v) => ({ screen, ...v }));
}

/**
 * Run the CLI as the peer whose home is `home` (`python -m peerfed ARGS --json`, the interpreter
 * in CLI_PYTHON) and return its JSON answer; `passphrase` unlocks a sealed keyring (and locks new
 * keys; without it `id new` is given `--no-passphrase`).
 */
export function peerfed(home, args, passphrase) {
  const env = { ...process.env, PEERFED_HOME: home };
  delete env.PEERFED_PASSPHRASE;
  if (passphrase) env.PEERFED_PASSPHRASE = passphrase;
  // New keys are encrypted by default: without a passphrase, say so explicitly.
  if (!passphrase && args[0] === 'id' && args[1] === 'new') args = ['id', 'new', '--no-passphrase', ...args.slice(2)];
  return JSON.parse(execFileSync(process.env.CLI_PYTHON, ['-m', 'peerfed', ...args, '--json'], { env, encoding: 'utf8', timeout: 60_000 }));
}

/** `check()` asked again, at most 100 times 100 ms apart, until it gives something; throws naming `what`. */
export async function eventually(check, what) {
  for (let i = 0; i < 100; i++) {
    const found = check();
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}
