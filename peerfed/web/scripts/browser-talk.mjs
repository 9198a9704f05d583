// Reach out, accept and talk between a browser peer and a CLI peer on one node (issue 13), in a
// real headless Chromium. The CLI peer (PEERFED_HOME=$CLI_HOME, run with $CLI_PYTHON) already has an
// offer on the node; this script plays both sides in turn and reports what each one saw.
//
//   CLI_PYTHON=... CLI_HOME=... node scripts/browser-talk.mjs NODE_URL SHOTS_DIR PROFILE_DIR
// Prints one JSON document.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const [url, shots, profile] = process.argv.slice(2);
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WAIT = { timeout: 60_000 };
const out = { console: [], requests: [], cli: {} };

function as(home, ...args) {
  const env = { ...process.env, PEERFED_HOME: home };
  delete env.PEERFED_PASSPHRASE;
  const text = execFileSync(process.env.CLI_PYTHON, ['-m', 'peerfed', ...args, '--json'], {
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(text);
}
const cli = (...args) => as(process.env.CLI_HOME, ...args); // Ana
const ben = (...args) => as(process.env.CLI_HOME_2, ...args);

// The CLI reads its mail when asked: ask again, a bounded number of times, until `check` holds.
async function eventually(check, what) {
  for (let i = 0; i < 100; i++) {
    const found = check();
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: FLAGS,
  viewport: { width: 390, height: 844 },
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.text()); });
  page.on('pageerror', (e) => out.console.push(String(e)));
  page.on('request', (r) => out.requests.push(new URL(r.url()).origin));

  await page.goto(url + '/');
  await page.getByLabel('A name others will see').fill('Rio');
  await page.getByRole('button', { name: 'Join' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  out.peer = await page.locator('#peer-id').textContent();

  // Rio asks for support, so Ana can reach out later.
  await page.getByRole('button', { name: 'Offer or ask' }).click();
  await page.getByLabel('Ask for support').check();
  await page.getByLabel('What it is about, in your own words').fill('panic at night');
  await page.getByLabel('A few words for others to read').fill('Looking for someone who gets it.');
  await page.getByRole('button', { name: 'Publish' }).click();
  await page.locator('#published').waitFor(WAIT);

  // Rio reaches out to Ana's offer: sealed in the page, first-contact work done in a worker.
  await page.locator('li.listing', { hasText: 'grief' }).getByRole('button', { name: 'Reach out' }).click();
  await page.getByLabel('A first hello').fill('Hello Ana, <i>nights</i> are hard.');
  await page.getByRole('button', { name: 'Send hello' }).click();
  await page.locator('#talk-state', { hasText: 'Waiting for them to answer.' }).waitFor(WAIT);

  const [reached] = await eventually(() => cli('connections').connections, 'the reach-out at the CLI');
  out.cli.reached = reached;
  cli('accept', reached.id ?? reached.connection, '--reply', 'Of course.');
  cli('send', reached.id ?? reached.connection, 'Glad you wrote. \u202eWhat helps at night?');

  // Live: the acceptance and Ana's message arrive over the WebSocket while the page is open.
  await page.locator('#talk-state', { hasText: 'You are talking.' }).waitFor(WAIT);
  await page.locator('#messages li.message:not(.mine)').waitFor(WAIT);
  out.seen = await page.locator('#messages li').evaluateAll((items) => items.map((li) => li.textContent));
  out.seenHtml = await page.locator('#messages').innerHTML();
  await page.getByLabel('Your message').fill('Thank you. Breathing slowly <b>helps</b> me.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#messages li.message.mine').waitFor(WAIT);
  await page.screenshot({ path: join(shots, 'conversation-phone.png'), fullPage: true });
  out.cli.read = await eventually(() => {
    const read = cli('read', reached.id ?? reached.connection);
    return read.messages.length === 2 ? read : null;
  }, "the browser's message at the CLI");

  // Ana reaches out to Rio's request; the Talks button counts it, Rio accepts.
  await page.getByRole('button', { name: 'Home' }).click();
  const rios = await eventually(() => cli('browse').listings.find((l) => l.topics.includes('panic at night')), "Rio's request at the CLI");
  const second = cli('reach', rios.id, '--hello', 'I know those nights too.');
  await page.getByRole('button', { name: /Talks 1 new/ }).waitFor(WAIT);
  out.talksButton = await page.getByRole('button', { name: /Talks/ }).textContent();
  await page.getByRole('button', { name: /Talks/ }).click();
  out.talks = await page.locator('#talks li').allTextContents();
  await page.screenshot({ path: join(shots, 'talks-phone.png'), fullPage: true });
  await page.locator('#talks li', { hasText: 'Reach-out from Ana' }).getByRole('button', { name: 'Open' }).click();
  out.incomingState = await page.locator('#talk-state').textContent();
  await page.screenshot({ path: join(shots, 'answer-phone.png'), fullPage: true });
  await page.getByLabel('A few words back (optional)').fill('Yes, let us talk.');
  await page.getByRole('button', { name: 'Accept' }).click();
  await page.locator('#talk-state', { hasText: 'You are talking.' }).waitFor(WAIT);
  out.cli.accepted = await eventually(() => cli('connections').connections.find(
    (c) => (c.id ?? c.connection) === second.connection && c.state === 'accepted'), 'the acceptance at the CLI');
  out.talksAfter = await page.getByRole('button', { name: /Talks/ }).textContent();
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.locator('#talks li', { hasText: 'You reached out to Ana' }).getByRole('button', { name: 'Open' }).click();
  await page.screenshot({ path: join(shots, 'conversation-desktop.png'), fullPage: true });

  // Rio ends the first conversation and asks for its words to be deleted; the CLI sees it ended.
  await page.getByRole('button', { name: 'End and delete our words' }).click();
  await page.locator('#talk-state', { hasText: 'You ended this conversation.' }).waitFor(WAIT);
  out.endedState = await page.locator('#talk-state').textContent();
  out.endedMessages = await page.locator('#messages li').count();
  out.cli.ended = await eventually(() => cli('connections').connections.find(
    (c) => (c.id ?? c.connection) === (reached.id ?? reached.connection) && c.state === 'ended'), 'the end at the CLI');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(shots, 'ended-phone.png'), fullPage: true });

  // Rio blocks Ana in the second one. Ana writes there; then Ben reaches out. Mail comes in order,
  // so once Ben's reach-out shows, Ana's message has been read and dropped.
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.locator('#talks li', { hasText: 'Reach-out from Ana' }).getByRole('button', { name: 'Open' }).click();
  await page.getByRole('button', { name: 'Block Ana' }).click();
  out.blocked = await page.locator('.leave [role=status]').textContent();
  cli('send', second.connection, 'Still there?');
  ben('id', 'new', '--node', url, '--name', 'Ben');
  ben('browse');
  ben('reach', rios.id, '--hello', 'Hi from Ben.');
  await page.getByRole('button', { name: /Talks 1 new/ }).waitFor(WAIT);
  out.afterBlock = await page.locator('#messages li').allTextContents();
  await page.getByRole('button', { name: /Talks/ }).click();
  out.talksAfterBlock = await page.locator('#talks li h2').allTextContents();

  // Rio accepts Ben and writes once; the page is closed and opened again; Rio writes once more.
  const benConnection = ben('connections').connections[0];
  await page.locator('#talks li', { hasText: 'Reach-out from Ben' }).getByRole('button', { name: 'Open' }).click();
  await page.getByRole('button', { name: 'Accept' }).click();
  await page.getByLabel('Your message').fill('Before the page closed.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#messages li.message.mine').waitFor(WAIT);
  out.atRest = await page.evaluate(() => new Promise((resolve, reject) => {
    const opening = indexedDB.open('peerfed');
    opening.onerror = () => reject(opening.error);
    opening.onsuccess = () => {
      const get = opening.result.transaction('device').objectStore('device').get('talk-state');
      get.onsuccess = () => resolve(Array.from(get.result, (b) => String.fromCharCode(b)).join(''));
    };
  }));
  await page.reload();
  await page.locator('#welcome').waitFor(WAIT);
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.locator('#talks li', { hasText: 'Ben' }).waitFor(WAIT);
  out.talksAfterReload = await page.locator('#talks li h2').allTextContents();
  await page.locator('#talks li', { hasText: 'Ben' }).getByRole('button', { name: 'Open' }).click();
  out.benAfterReload = await page.locator('#messages li').allTextContents();
  await page.getByLabel('Your message').fill('After it opened again.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#messages li.message.mine', { hasText: 'After it opened again.' }).waitFor(WAIT);
  out.cli.benRead = await eventually(() => {
    const read = ben('read', benConnection.id);
    return read.messages.length === 2 ? read : null;
  }, "both of the browser's messages at Ben's CLI");
} finally {
  await context.close();
}
out.requests = [...new Set(out.requests)];
console.log(JSON.stringify(out));
