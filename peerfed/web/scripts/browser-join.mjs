// Drive the built client in a real headless Chromium (issue 13): open the node's page, join it,
// check what IndexedDB holds, come back with the passphrase. Run by tests/client/test_web_browser.py.
//
//   node scripts/browser-join.mjs NODE_URL SHOTS_DIR PROFILE_DIR
// Prints one JSON document: what the page showed and what the device stored.

import { chromium } from 'playwright-core';
import { join } from 'node:path';

const [url, shots, profile] = process.argv.slice(2);
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const NAME = 'Sam';
const PASSPHRASE = 'slow mornings by the river';
const WAIT = { timeout: 60_000 };

const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: FLAGS,
  viewport: { width: 390, height: 844 },
});
const out = { console: [], requests: [] };
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.text()); });
  page.on('pageerror', (e) => out.console.push(String(e)));
  page.on('request', (r) => out.requests.push(new URL(r.url()).origin));

  await page.goto(url + '/');
  await page.locator('h1', { hasText: 'Join' }).waitFor(WAIT);
  out.heading = await page.locator('h1').textContent();
  out.community = await page.locator('#community').textContent();
  out.resources = await page.locator('#resources .resource h3').allTextContents();
  out.emergency = await page.locator('#resources .resource .note').first().textContent();
  out.note = await page.locator('#resources .resource .note').nth(1).textContent();
  await page.screenshot({ path: join(shots, 'join-phone.png'), fullPage: true });

  await page.getByLabel('A name others will see').fill(NAME);
  await page.getByLabel('A passphrase to protect your keys').fill(PASSPHRASE);
  await page.getByRole('button', { name: 'Join' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  out.joined = await page.locator('main').textContent();
  out.peer = await page.locator('#peer-id').textContent();
  await page.screenshot({ path: join(shots, 'joined-phone.png'), fullPage: true });

  // What this device keeps: one record, its keyring sealed (first byte 0x01), no token.
  out.stored = await page.evaluate(() => new Promise((resolve, reject) => {
    const opening = indexedDB.open('peerfed');
    opening.onerror = () => reject(opening.error);
    opening.onsuccess = () => {
      const get = opening.result.transaction('device').objectStore('device').get('this-device');
      get.onsuccess = () => {
        const r = get.result;
        resolve({ fields: Object.keys(r).sort(), first: r.keyring[0], length: r.keyring.length, node: r.node, name: r.name,
          keyring: Array.from(r.keyring, (b) => b.toString(16).padStart(2, '0')).join('') });
      };
    };
  }));

  // Coming back: the passphrase opens the same keys; a wrong one says so in plain words.
  await page.reload();
  await page.locator('h1', { hasText: 'Welcome back' }).waitFor(WAIT);
  await page.getByLabel('Your passphrase').fill('not my passphrase');
  await page.getByRole('button', { name: 'Open' }).click();
  out.wrong = await page.getByRole('alert').textContent(WAIT);
  await page.getByLabel('Your passphrase').fill(PASSPHRASE);
  await page.getByRole('button', { name: 'Open' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  out.peerAgain = await page.locator('#peer-id').textContent();
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: join(shots, 'back-desktop.png'), fullPage: true });
} finally {
  await context.close();
}
out.requests = [...new Set(out.requests)];
console.log(JSON.stringify(out));
