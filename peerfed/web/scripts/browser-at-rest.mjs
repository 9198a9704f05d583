// A whole conversation in headless Chromium with a passphrase set, then the browser is closed so
// that IndexedDB is flushed to disk (issue 13, spec §12): tests/client/test_web_at_rest.py then
// reads the profile's files and the node's as bytes. The CLI peer (PEERFED_HOME=$CLI_HOME, run
// with $CLI_PYTHON) is already joined; $SECRETS (JSON) holds every private word used here.
//
//   CLI_PYTHON=... CLI_HOME=... SECRETS=... node scripts/browser-at-rest.mjs NODE_URL SHOTS PROFILE
// Prints one JSON document.

import { join } from 'node:path';

import { audit, eventually, launch, peerfed } from './browser-kit.mjs';

const [url, shots, profile] = process.argv.slice(2);
const secret = JSON.parse(process.env.SECRETS);
const WAIT = { timeout: 60_000 };
const out = { console: [], violations: [], requests: [] };

const cli = (...args) => peerfed(process.env.CLI_HOME, args);


const context = await launch(profile);
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.text()); });
  page.on('pageerror', (e) => out.console.push(String(e)));
  page.on('request', (r) => out.requests.push(new URL(r.url()).origin));

  await page.goto(url + '/');
  await page.getByLabel('A name others will see').fill(secret.name);
  await page.getByLabel('A passphrase to protect your keys').fill(secret.passphrase);
  await page.getByRole('button', { name: 'Join' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  out.violations.push(...(await audit(page, 'welcome')));

  await page.getByRole('button', { name: 'Offer or ask' }).click();
  await page.getByLabel('Ask for support').check();
  await page.getByLabel('What it is about, in your own words').fill(secret.topic);
  await page.getByLabel('A few words for others to read').fill(secret.summary);
  await page.getByRole('button', { name: 'Publish' }).click();
  await page.locator('#published').waitFor(WAIT);

  const listing = await eventually(() => cli('browse').listings.find((l) => l.topics.includes(secret.topic)), 'the request at the CLI');
  const reach = cli('reach', listing.id, '--hello', secret.hello);
  await page.getByRole('button', { name: /Talks 1 new/ }).waitFor(WAIT);
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.locator('#talks li').first().getByRole('button', { name: 'Open' }).click();
  await page.getByLabel('A few words back (optional)').fill(secret.reply);
  await page.getByRole('button', { name: 'Accept' }).click();
  await page.locator('#talk-state', { hasText: 'You are talking.' }).waitFor(WAIT);
  await eventually(() => cli('connections').connections.find((c) => (c.id ?? c.connection) === reach.connection && c.state === 'accepted'), 'the acceptance at the CLI');
  cli('send', reach.connection, secret.cliMessage);
  cli('agree', reach.connection, '--helps', secret.terms);
  await page.locator('#messages li.message:not(.mine)', { hasText: secret.cliMessage }).waitFor(WAIT);
  await page.getByLabel('Your message').fill(secret.browserMessage);
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#messages li.message.mine').waitFor(WAIT);
  out.violations.push(...(await audit(page, 'conversation')));
  await page.screenshot({ path: join(shots, 'conversation-phone.png'), fullPage: true });
  out.cliRead = await eventually(() => {
    const read = cli('read', reach.connection);
    return read.messages.some((m) => m.text === secret.browserMessage) ? read : null;
  }, "the browser's message at the CLI");
  // The page holds the words now (the positive control for what is checked at rest).
  out.shown = await page.locator('main').innerText();
} finally {
  await context.close(); // flushes IndexedDB to the profile's files
}
out.requests = [...new Set(out.requests)];
console.log(JSON.stringify(out));
