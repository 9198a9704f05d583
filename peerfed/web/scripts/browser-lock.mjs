// An invite link, locking (at a press and after an idle time) and erase me, in a real headless
// Chromium against a node that asks for invite codes (issue 13; spec §12, §13.4, §13.6, §13.10).
// The page's clock is Playwright's, so the idle time passes without waiting for it.
//
//   node scripts/browser-lock.mjs NODE_URL SHOTS_DIR PROFILE_DIR INVITE_CODE
// Prints one JSON document.

import { join } from 'node:path';
import { audit, launch } from './browser-kit.mjs';

const [url, shots, profile, code] = process.argv.slice(2);
const WAIT = { timeout: 60_000 };
const PASSPHRASE = 'a quiet room with the door shut';
const out = { console: [], requests: [], violations: [] };

const context = await launch(profile);
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.text()); });
  page.on('pageerror', (e) => out.console.push(String(e)));
  page.on('request', (r) => out.requests.push(r.url()));
  const check = async (screen) => out.violations.push(...(await audit(page, screen)));
  await page.clock.install();

  // The invite link fills the join form, shows its QR code, and leaves the address bar.
  await page.goto(`${url}/#invite=${code}`);
  await page.locator('#join').waitFor(WAIT);
  out.inviteField = await page.getByLabel('Invite code').inputValue();
  out.addressAfter = page.url();
  out.inviteLink = await page.locator('#invite-link').textContent();
  out.qrLabel = await page.locator('svg.qr').getAttribute('aria-label');
  out.qrRole = await page.locator('svg.qr').getAttribute('role');
  await check('join from an invite link');
  await page.screenshot({ path: join(shots, 'invite-phone.png'), fullPage: true });
  await page.getByLabel('A name others will see').fill('Noa');
  await page.getByLabel('A passphrase to protect your keys on this device').fill(PASSPHRASE);
  await page.getByRole('button', { name: 'Join' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  out.peer = await page.locator('#peer-id').textContent();
  await check('home with lock and erase');
  await page.screenshot({ path: join(shots, 'home-phone.png'), fullPage: true });

  // Locking by itself after the chosen idle time: the passphrase screen, the keys gone from the page.
  await page.getByLabel('Lock by itself after').selectOption('5');
  await page.clock.runFor(4 * 60_000);
  out.beforeIdle = await page.locator('#welcome').count();
  await page.clock.runFor(60_000 + 1000);
  await page.getByRole('heading', { name: 'Welcome back' }).waitFor(WAIT);
  out.afterIdle = await page.locator('h1').textContent();
  out.sectionsHidden = await page.locator('#sections').isHidden();
  await check('locked');
  await page.screenshot({ path: join(shots, 'locked-phone.png'), fullPage: true });
  // The page's clock ran five minutes ahead; set it back to the node's, which signatures are checked against.
  await page.clock.setSystemTime(Date.now());
  await page.getByLabel('Your passphrase').fill(PASSPHRASE);
  await page.getByRole('button', { name: 'Open' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  out.peerAgain = await page.locator('#peer-id').textContent();

  // Locking at a press.
  await page.getByRole('button', { name: 'Lock now' }).click();
  await page.getByRole('heading', { name: 'Welcome back' }).waitFor(WAIT);
  await page.getByLabel('Your passphrase').fill(PASSPHRASE);
  await page.getByRole('button', { name: 'Open' }).click();
  await page.locator('#welcome').waitFor(WAIT);

  // Erase me: asked first; "no" changes nothing; "yes" erases at the node, then in the browser.
  await page.getByRole('button', { name: 'Erase me…' }).click();
  out.asked = await page.locator('#erase-confirm [role=alert]').textContent();
  await check('erase asked');
  await page.screenshot({ path: join(shots, 'erase-ask-phone.png'), fullPage: true });
  await page.getByRole('button', { name: 'No, keep it' }).click();
  out.askHidden = await page.locator('#erase-confirm').isHidden();
  await page.getByRole('button', { name: 'Erase me…' }).click();
  await page.getByRole('button', { name: 'Yes, erase everything' }).click();
  await page.locator('#erased').waitFor(WAIT);
  out.erased = await page.locator('#erased').textContent();
  out.databases = await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
  await check('erased');
  await page.screenshot({ path: join(shots, 'erased-phone.png'), fullPage: true });
  await page.reload();
  await page.locator('#join').waitFor(WAIT);
  out.afterReload = await page.locator('h1').textContent();
} finally {
  await context.close();
}
// The invite code was never in a request: only in the fragment, which browsers keep to themselves.
out.codeSent = out.requests.some((r) => r.includes(code));
out.requests = [...new Set(out.requests.map((r) => new URL(r).origin))];
console.log(JSON.stringify(out));
