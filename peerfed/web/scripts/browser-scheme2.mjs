// Scheme 2 between a browser peer and a CLI peer (issue 15, spec §14), in headless Chromium. The
// page's bundle names a signed pre-key and it uploads one-time pre-keys, so the CLI peer
// (PEERFED_HOME=$CLI_HOME, run with $CLI_PYTHON, already joined) reaches out with scheme 2; the page
// answers and writes in that session. Every sealed item the node hands the page (live frames) and
// every one the page hands the node (POST /api/v1/send) is recorded as seen on the wire, for the
// test to read its scheme byte. The page's sealed secrets record is opened here with the identity
// seed (no passphrase is set), so the test can look for each secret in the profile's files.
//
//   CLI_PYTHON=... CLI_HOME=... node scripts/browser-scheme2.mjs NODE_URL SHOTS PROFILE
// Prints one JSON document.

import { join } from 'node:path';

import {
  aeadDecrypt, blake2b256, keyringFromBytes, NONCE_BYTES, openBlob, person, toHex, unpack, x25519Public,
} from '../src/protocol/index.js';
import { audit, eventually, launch, peerfed } from './browser-kit.mjs';

const [url, shots, profile] = process.argv.slice(2);
const WAIT = { timeout: 60_000 };
const out = { console: [], violations: [], requests: [], received: [], sent: [] };

const cli = (...args) => peerfed(process.env.CLI_HOME, args);
const b64 = (bytes) => Buffer.from(bytes).toString('base64');

// The page's IndexedDB records, read in the page: the device record's keyring and the sealed secrets.
async function stored(page) {
  const [keyring, secrets] = await page.evaluate(() => new Promise((resolve, reject) => {
    const opening = indexedDB.open('peerfed');
    opening.onerror = () => reject(opening.error);
    opening.onsuccess = () => {
      const store = opening.result.transaction('device').objectStore('device');
      const device = store.get('this-device');
      const held = store.get('ratchet-secrets');
      held.onsuccess = () => (held.result ? resolve([Array.from(device.result.keyring), Array.from(held.result)]) : reject(new Error('no secrets yet')));
    };
  }));
  const keys = keyringFromBytes(await openBlob(Uint8Array.from(keyring), null));
  const bytes = Uint8Array.from(secrets);
  const key = blake2b256(keys.seed, person('peerfed/webkeys'));
  const [, signed, oneTime, sessions] = unpack(aeadDecrypt(key, bytes.subarray(0, NONCE_BYTES), bytes.subarray(NONCE_BYTES), new TextEncoder().encode('peerfed/web/prekeys/v1')));
  // Every secret a session holds: its root, chain keys, ratchet secret and skipped message keys.
  const sessionSecrets = sessions.flatMap(([, , , [root, own, , send, , , recv, , skipped]]) => [root, own, send, recv, ...skipped.map((s) => s[2])]);
  return {
    signedPublic: signed.map(([s]) => toHex(x25519Public(s))),
    oneTimeCount: oneTime.length,
    sessions: sessions.map(([connection]) => toHex(connection)),
    secrets: [...signed.map(([s]) => s), ...oneTime, ...sessionSecrets].filter((s) => s instanceof Uint8Array).map(toHex),
  };
}

const context = await launch(profile);
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.text()); });
  page.on('pageerror', (e) => out.console.push(String(e)));
  page.on('request', (r) => {
    out.requests.push(new URL(r.url()).origin);
    if (r.url().endsWith('/api/v1/send')) out.sent.push(b64(r.postDataBuffer()));
  });
  page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
    const frame = JSON.parse(String(payload));
    if (frame.type === 'item') out.received.push(frame.sealed);
  }));

  await page.goto(url + '/');
  await page.getByLabel('A name others will see').fill('Rio');
  await page.getByRole('button', { name: 'Join' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  out.violations.push(...(await audit(page, 'welcome')));
  out.peer = await page.locator('#peer-id').textContent();

  await page.getByRole('button', { name: 'Offer or ask' }).click();
  await page.getByLabel('Ask for support').check();
  await page.getByLabel('What it is about, in your own words').fill('panic at night');
  await page.getByLabel('A few words for others to read').fill('Looking for someone who gets it.');
  await page.getByRole('button', { name: 'Publish' }).click();
  await page.locator('#published').waitFor(WAIT);

  // The one-time pre-keys went up at sign-in (their secrets stored first): wait until they are kept.
  for (let i = 0; i < 100 && !(out.joined?.oneTimeCount > 0); i++) {
    out.joined = await stored(page).catch(() => null);
    if (!(out.joined?.oneTimeCount > 0)) await new Promise((resolve) => setTimeout(resolve, 100));
  }

  // The browser as responder: Ana reaches out to Rio's request, Rio accepts, both write.
  const listing = await eventually(() => cli('browse').listings.find((l) => l.topics.includes('panic at night')), "Rio's request at the CLI");
  const reach = cli('reach', listing.id, '--hello', 'I know those nights too.');
  await page.getByRole('button', { name: /Talks 1 new/ }).waitFor(WAIT);
  await page.getByRole('button', { name: /Talks/ }).click();
  out.violations.push(...(await audit(page, 'talks')));
  await page.locator('#talks li').first().getByRole('button', { name: 'Open' }).click();
  out.hello = await page.locator('main').innerText();
  await page.getByLabel('A few words back (optional)').fill('Yes, let us talk.');
  await page.getByRole('button', { name: 'Accept' }).click();
  await page.locator('#talk-state', { hasText: 'You are talking.' }).waitFor(WAIT);
  await eventually(() => cli('connections').connections.find((c) => (c.id ?? c.connection) === reach.connection && c.state === 'accepted'), 'the acceptance at the CLI');
  cli('send', reach.connection, 'Breathing with you, from the CLI.');
  await page.locator('#messages li.message:not(.mine)', { hasText: 'from the CLI' }).waitFor(WAIT);
  await page.getByLabel('Your message').fill('And back from the browser.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#messages li.message.mine').waitFor(WAIT);
  out.violations.push(...(await audit(page, 'conversation')));
  await page.screenshot({ path: join(shots, 'responder-phone.png'), fullPage: true });
  out.cliRead = await eventually(() => {
    const read = cli('read', reach.connection);
    return read.messages.some((m) => m.text === 'And back from the browser.') ? read : null;
  }, "the browser's message at the CLI");
  out.responder = await stored(page);

  // Ending drops the session at both ends (spec §9.4, §14.4).
  await page.getByRole('button', { name: 'End conversation', exact: true }).click();
  await page.locator('#talk-state', { hasText: 'You ended this conversation.' }).waitFor(WAIT);
  await eventually(() => cli('connections').connections.find((c) => (c.id ?? c.connection) === reach.connection && c.state === 'ended'), 'the end at the CLI');
  out.violations.push(...(await audit(page, 'ended')));
  out.afterEnd = await stored(page);

  // The browser as initiator: Rio reaches out to Ana's offer, whose bundle names a signed pre-key,
  // claiming one of Ana's one-time pre-keys; Ana accepts and both write in that session.
  out.initiatorFrom = { received: out.received.length, sent: out.sent.length };
  await page.getByRole('button', { name: 'Browse' }).click();
  await page.locator('li.listing', { hasText: 'grief' }).getByRole('button', { name: 'Reach out' }).click();
  await page.getByLabel('A first hello').fill('Hello Ana, nights are hard.');
  await page.getByRole('button', { name: 'Send hello' }).click();
  await page.locator('#talk-state', { hasText: 'Waiting for them to answer.' }).waitFor(WAIT);
  out.violations.push(...(await audit(page, 'reached')));
  const mine = await eventually(() => cli('connections').connections.find((c) => c.state === 'reached-out'), 'the reach-out at the CLI');
  const conn = mine.id ?? mine.connection;
  cli('accept', conn, '--reply', 'Of course.');
  cli('send', conn, 'Glad you wrote, from the CLI.');
  await page.locator('#messages li.message:not(.mine)', { hasText: 'Glad you wrote' }).waitFor(WAIT);
  await page.getByLabel('Your message').fill('Thank you, from the browser.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#messages li.message.mine').waitFor(WAIT);
  await page.screenshot({ path: join(shots, 'initiator-phone.png'), fullPage: true });
  out.initiatorRead = await eventually(() => {
    const read = cli('read', conn);
    return read.messages.some((m) => m.text === 'Thank you, from the browser.') ? read : null;
  }, "the browser's message at the CLI");
  out.initiator = await stored(page);
} finally {
  await context.close(); // flushes IndexedDB to the profile's files
}
out.requests = [...new Set(out.requests)];
console.log(JSON.stringify(out));
