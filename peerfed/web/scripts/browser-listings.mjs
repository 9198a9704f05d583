// Offer, ask and browse in a real headless Chromium (issue 13): join the node's page, publish an
// offer signed in the page, then browse and filter the directory, which also holds a listing a CLI
// peer published. Run by tests/client/test_web_listings.py.
//
//   node scripts/browser-listings.mjs NODE_URL SHOTS_DIR PROFILE_DIR
// Prints one JSON document: what the page showed.

import { chromium } from 'playwright-core';
import { join } from 'node:path';

const [url, shots, profile] = process.argv.slice(2);
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WAIT = { timeout: 60_000 };

const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: FLAGS,
  viewport: { width: 390, height: 844 },
  timezoneId: 'Europe/Madrid',
  locale: 'es-ES',
});
const out = { console: [], requests: [] };

async function results(page) {
  await page.locator('#results-count').waitFor(WAIT);
  return page.locator('#results li.listing').evaluateAll((items) =>
    items.map((li) => ({
      heading: li.querySelector('h3').textContent,
      topics: li.querySelector('.topics').textContent,
      summary: li.querySelector('.summary').textContent,
      notes: [...li.querySelectorAll('.note')].map((p) => p.textContent),
      html: li.querySelector('.summary').innerHTML,
    })),
  );
}

async function filter(page, values) {
  await page.getByLabel('Topic words').fill(values.topic ?? '');
  await page.getByLabel('Language they can talk in').fill(values.lang ?? '');
  await page.getByLabel('Way to talk').selectOption(values.format ?? '');
  await page.getByLabel('Showing').selectOption(values.kind ?? '');
  await page.locator('#results-count').evaluate((h) => h.remove());
  await page.getByRole('button', { name: 'Show' }).click();
  return results(page);
}

try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.text()); });
  page.on('pageerror', (e) => out.console.push(String(e)));
  page.on('request', (r) => out.requests.push(new URL(r.url()).origin));

  await page.goto(url + '/');
  // The browser asks for Spanish (locale es-ES) and the page follows it; this run reads English.
  await page.locator('h1', { hasText: 'Unirte' }).waitFor(WAIT);
  await page.locator('#language').selectOption('en');
  await page.locator('h1', { hasText: 'Join' }).waitFor(WAIT);
  await page.getByLabel('A name others will see').fill('Rio');
  await page.getByRole('button', { name: 'Join' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  out.peer = await page.locator('#peer-id').textContent();

  // Offer, by keyboard where a person would use it: the section button, then the form.
  await page.getByRole('button', { name: 'Offer or ask' }).focus();
  await page.keyboard.press('Enter');
  await page.locator('h1', { hasText: 'Offer or ask for support' }).waitFor(WAIT);
  out.languagesDefault = await page.getByLabel('Languages you can talk in').inputValue();
  out.tzHint = await page.locator('#days-hint').textContent();
  // Nothing typed yet: the page says what is missing, plainly, and sends nothing.
  await page.getByRole('button', { name: 'Publish' }).click();
  out.missing = await page.getByRole('alert').textContent(WAIT);
  await page.getByLabel('What it is about, in your own words').fill('panic at night,  insomnia , panic at night');
  await page.getByLabel('A few words for others to read').fill('Awake at 3 a.m. too. <b>Happy</b> to write.');
  await page.getByLabel('Languages you can talk in').fill('es, en');
  await page.getByLabel('Voice call').check();
  for (const day of ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday']) await page.getByLabel(day).check();
  await page.getByLabel('From').fill('21:00');
  await page.getByLabel('Until').fill('23:30');
  await page.screenshot({ path: join(shots, 'offer-phone.png'), fullPage: true });
  await page.getByRole('button', { name: 'Publish' }).click();
  await page.locator('#published').waitFor(WAIT);
  out.published = await page.locator('#published').textContent();

  out.all = await results(page);
  await page.screenshot({ path: join(shots, 'browse-phone.png'), fullPage: true });
  out.byTopic = await filter(page, { topic: 'GRIEF' });
  out.byLang = await filter(page, { lang: 'es' });
  out.byFormat = await filter(page, { format: 'voice' });
  out.requests_only = await filter(page, { kind: 'request' });
  await page.setViewportSize({ width: 1280, height: 800 });
  out.everything = await filter(page, {});
  await page.screenshot({ path: join(shots, 'browse-desktop.png'), fullPage: true });
  await page.getByRole('button', { name: 'Offer or ask' }).click();
  await page.screenshot({ path: join(shots, 'offer-desktop.png'), fullPage: true });

  // A second listing, a request, then taken down again from Browse: it leaves every directory.
  await page.getByLabel('Ask for support').check();
  await page.getByLabel('What it is about, in your own words').fill('leaving soon');
  await page.getByLabel('A few words for others to read').fill('Only for a moment.');
  await page.getByRole('button', { name: 'Publish' }).click();
  await page.locator('#published').waitFor(WAIT);
  const request = page.locator('#results li.listing', { hasText: 'leaving soon' });
  await request.getByRole('button', { name: 'Take it down everywhere' }).click();
  await request.getByText('Taken down.', { exact: false }).waitFor(WAIT);
  out.withdrawn = await request.getByRole('status').textContent();
  await page.screenshot({ path: join(shots, 'withdrawn-desktop.png'), fullPage: true });
  out.afterWithdraw = await filter(page, {});
} finally {
  await context.close();
}
out.requests = [...new Set(out.requests)];
console.log(JSON.stringify(out));
