// One cold start of the web client, timed (issue 13's closing note; bench/web_cold_start.py runs
// it several times and takes medians). A new Chromium process on an empty profile opens NODE_URL,
// joins with a passphrase (keys made and sealed with Argon2id here), finds the offer whose topic
// is TOPIC in Browse and sends a first hello (sealed here, first-contact work in a worker).
//
//   node scripts/bench-cold-start.mjs NODE_URL TOPIC PROFILE_DIR
// Prints one JSON document: milliseconds from before the browser starts to each milestone.

import { performance } from 'node:perf_hooks';

import { launch } from './browser-kit.mjs';

const [url, topic, profile] = process.argv.slice(2);
const WAIT = { timeout: 120_000 };
const began = performance.now();
const at = () => Math.round(performance.now() - began);
const out = {};

const context = await launch(profile);
try {
  out.browser = at();
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(url + '/');
  // The first screen: the community's join form, drawn from its checked node document.
  await page.locator('#join').waitFor(WAIT);
  out.firstScreen = at();
  await page.getByLabel('A name others will see').fill('Bench');
  await page.getByLabel('A passphrase to protect your keys').fill('a passphrase for the benchmark');
  await page.getByRole('button', { name: 'Join' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  out.joined = at();
  await page.getByRole('button', { name: 'Browse' }).click();
  const offer = page.locator('li.listing', { hasText: topic });
  await offer.waitFor(WAIT);
  await offer.getByRole('button', { name: 'Reach out' }).click();
  await page.getByLabel('A first hello').fill('Hello, I saw your offer.');
  await page.getByRole('button', { name: 'Send hello' }).click();
  // Sent: the node has taken the sealed hello (the page says so only after its answer).
  await page.locator('#talk-state', { hasText: 'Waiting for them to answer.' }).waitFor(WAIT);
  out.firstMessage = at();
  out.transferred = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => e.initiatorType === 'script' || e.name.endsWith('.js'))
    .map((e) => ({ name: new URL(e.name).pathname, bytes: e.transferSize })));
} finally {
  await context.close();
}
console.log(JSON.stringify(out));
