// A live conversation in headless Chromium while its node process is stopped and started again
// (issue 13; spec §13.5 Live mailbox, §13.4 sessions, §12 key renewal). The page continues from a
// CLI backup whose key nears its end, talks with Ben (a CLI peer), and the test driving this script
// (tests/client/test_web_live.py) stops the node when told and says when it is back.
//
//   CLI_PYTHON=... BEN_HOME=... PASSPHRASE=...
//   node scripts/browser-live.mjs NODE_URL SHOTS_DIR PROFILE_DIR CLI_BACKUP BROWSER_BACKUP CONNECTION
// Talks in lines: prints {"step": "listening"} and waits for a line "down"; prints
// {"step": "lost"} and waits for "up"; ends with one JSON document of what it saw.

import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { audit, eventually, launch, peerfed } from './browser-kit.mjs';

const [url, shots, profile, cliBackup, browserBackup, connection] = process.argv.slice(2);
const WAIT = { timeout: 60_000 };
const out = { console: [], requests: [], violations: [], cli: {} };
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function told(word) {
  const { value } = await lines.next();
  if (value !== word) throw new Error(`expected ${word}, got ${value}`);
}
const step = (name) => console.log(JSON.stringify({ step: name }));

const ben = (...args) => peerfed(process.env.BEN_HOME, args);


const context = await launch(profile);
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.text()); });
  page.on('pageerror', (e) => out.console.push(String(e)));
  page.on('request', (r) => { if (!r.url().startsWith('blob:')) out.requests.push(new URL(r.url()).origin); });
  out.refused = [];
  page.on('response', async (r) => {
    if (r.status() >= 400) out.refused.push([new URL(r.url()).pathname, r.status(), await r.text().catch(() => '')]);
  });

  await page.goto(url + '/');
  await page.getByRole('button', { name: 'I have a backup' }).click();
  await page.getByLabel('The backup file').setInputFiles(cliBackup);
  await page.getByLabel('The backup’s passphrase').fill(process.env.PASSPHRASE);
  await page.getByRole('button', { name: 'Open backup' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.locator('#talks li', { hasText: 'Ben' }).getByRole('button', { name: 'Open' }).click();
  // Restored from a backup, the page holds the scheme-2 session with Ben the backup carried
  // (spec §9.6): it writes first and the conversation stays forward secret.
  await page.getByLabel('Your message').fill('Here on a new device.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#messages li.message.mine', { hasText: 'Here on a new device.' }).waitFor(WAIT);
  out.cli.benFirst = await eventually(() => {
    const read = ben('read', connection);
    return read.messages.some((m) => m.text === 'Here on a new device.') ? read : null;
  }, "the page's first message at Ben's CLI");
  ben('send', connection, 'Before the node stopped.');
  await page.locator('#messages li.message', { hasText: 'Before the node stopped.' }).waitFor(WAIT);

  // The node goes away under the open page: it says so calmly and keeps trying.
  step('listening');
  await told('down');
  await page.locator('#connection', { hasText: 'The connection to your community was lost.' }).waitFor(WAIT);
  out.lost = await page.locator('#connection').textContent();
  out.violations.push(...(await audit(page, 'connection lost')));
  await page.screenshot({ path: join(shots, 'lost-phone.png'), fullPage: true });
  step('lost');
  await told('up');

  // Back (with every session expired meanwhile): what Ben wrote arrives once each, in order; the
  // page writes with a session it opened again by itself.
  for (const words of ['While you were away, one.', 'While you were away, two.']) ben('send', connection, words);
  await page.locator('#connection', { hasText: 'Connected again.' }).waitFor(WAIT);
  out.back = await page.locator('#connection').textContent();
  await page.locator('#messages li.message', { hasText: 'While you were away, two.' }).waitFor(WAIT);
  out.messages = await page.locator('#messages li.message').allTextContents();
  await page.getByLabel('Your message').fill('Still here after the restart.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#messages li.message.mine', { hasText: 'Still here after the restart.' }).waitFor(WAIT);
  out.violations.push(...(await audit(page, 'connected again')));
  await page.screenshot({ path: join(shots, 'back-phone.png'), fullPage: true });
  out.cli.benRead = await eventually(() => {
    const read = ben('read', connection);
    return read.messages.some((m) => m.text === 'Still here after the restart.') ? read : null;
  }, "the page's message at Ben's CLI");

  // The page's keyring as it is now, to see the renewed key.
  await page.getByRole('button', { name: 'Home' }).click();
  await page.getByLabel('A passphrase for the backup').fill(process.env.PASSPHRASE);
  const [download] = await Promise.all([page.waitForEvent('download', WAIT), page.getByRole('button', { name: 'Download a backup' }).click()]);
  await download.saveAs(browserBackup);
} finally {
  await context.close();
}
out.requests = [...new Set(out.requests)];
console.log(JSON.stringify(out));
