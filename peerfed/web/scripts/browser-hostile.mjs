// Hostile input in a real headless Chromium (issue 13, spec §12, §13.10). Two modes:
//
//   node scripts/browser-hostile.mjs node URL SHOTS PROFILE
//     URL is a fake node (tests/client/test_web_hostile.py) that serves the real built client and
//     answers one request at a time with garbage, truncated JSON, wrong types, escape sequences or
//     an oversize body, as POST URL/_scenario chooses. For each: what the page showed, whether it
//     crashed, what it stored.
//
//   CLI_PYTHON=... CLI_HOME=... node scripts/browser-hostile.mjs peer URL SHOTS PROFILE
//     URL is a real node; the CLI peer (already joined, with a hostile name, offer and an answer
//     ready) writes to the browser peer with markup, bidirectional overrides and zero-width
//     characters in every field. What the page showed, as text and as elements.
//
// Prints one JSON document. Every screen reached is audited (axe-core).

import { join } from 'node:path';

import { audit, eventually, launch, peerfed } from './browser-kit.mjs';

const [mode, url, shots, profile] = process.argv.slice(2);
const WAIT = { timeout: 60_000 };
const out = { console: [], pageErrors: [], dialogs: [], violations: [], requests: [] };
const audited = new Set();

async function auditOnce(page, screen) {
  if (audited.has(screen)) return;
  audited.add(screen);
  out.violations.push(...(await audit(page, screen)));
}

// What the page holds now: anything a hostile string could have turned into.
function inspect(page) {
  return page.evaluate(() => ({
    pwned: globalThis.__pwned ?? null,
    images: document.querySelectorAll('img, iframe, object, embed, svg').length,
    scripts: [...document.scripts].map((s) => s.getAttribute('src')),
    handlers: [...document.querySelectorAll('*')].flatMap((e) => e.getAttributeNames().filter((n) => n.startsWith('on'))),
    alerts: [...document.querySelectorAll('[role=alert]')].map((a) => a.textContent),
    h1: document.querySelector('h1')?.textContent ?? null,
    text: document.body.innerText,
  }));
}

// The device record the page keeps (keystore.js), or null: a failed join must leave nothing.
function stored(page) {
  return page.evaluate(async () => {
    const names = (await indexedDB.databases()).map((d) => d.name);
    if (!names.includes('peerfed')) return null;
    return new Promise((resolve, reject) => {
      const opening = indexedDB.open('peerfed');
      opening.onerror = () => reject(opening.error);
      opening.onsuccess = () => {
        const db = opening.result;
        if (!db.objectStoreNames.contains('device')) {
          db.close();
          resolve(null);
          return;
        }
        const keys = db.transaction('device').objectStore('device').getAllKeys();
        keys.onsuccess = () => {
          db.close();
          resolve(keys.result.length ? keys.result.map(String) : null);
        };
      };
    });
  });
}

function forget(page) {
  return page.evaluate(() => new Promise((resolve) => {
    const deleting = indexedDB.deleteDatabase('peerfed');
    deleting.onsuccess = deleting.onerror = deleting.onblocked = () => resolve();
  }));
}

async function joinAs(page, name) {
  await page.getByLabel('A name others will see').fill(name);
  await page.getByRole('button', { name: 'Join' }).click();
}

async function fakeNode(page) {
  const setScenario = (target, kind) => fetch(`${url}/_scenario`, { method: 'POST', body: JSON.stringify({ target, kind }) });
  out.scenarios = [];
  const kinds = ['garbage', 'truncated', 'wrong-types', 'escapes', 'oversize'];
  for (const target of ['document', 'challenge', 'session', 'keys']) {
    for (const kind of kinds) {
      await setScenario(target, kind);
      out.at = { target, kind };
      await page.goto(url + '/');
      if (target !== 'document') {
        await page.locator('#join').waitFor(WAIT);
        await auditOnce(page, 'join (a hostile node document)');
        await joinAs(page, 'Rio');
      }
      await page.locator('[role=alert]').waitFor(WAIT);
      await auditOnce(page, target === 'document' ? 'unreachable' : 'join refused');
      if (kind === 'escapes') await page.screenshot({ path: join(shots, `${target}-${kind}.png`), fullPage: true });
      out.scenarios.push({ target, kind, seen: await inspect(page), stored: await stored(page) });
      await forget(page);
    }
  }
  // Signed in (the fake node takes any proof): the directory answers badly.
  for (const kind of kinds) {
    await setScenario('directory', kind);
    await page.goto(url + '/');
    await joinAs(page, 'Rio');
    await page.locator('#welcome').waitFor(WAIT);
    await page.getByRole('button', { name: 'Browse' }).click();
    await page.locator('#results [role=alert]').waitFor(WAIT);
    await auditOnce(page, 'browse refused');
    if (kind === 'escapes') await page.screenshot({ path: join(shots, `directory-${kind}.png`), fullPage: true });
    out.scenarios.push({ target: 'directory', kind, seen: await inspect(page), stored: await stored(page) });
    await forget(page);
  }
  // The live socket sends frames that are not JSON, JSON of the wrong shape, items that do not
  // open, escapes and one of 4 MB; the page acknowledges only the items it handled (dropped).
  await setScenario('live', 'frames');
  await page.goto(url + '/');
  await joinAs(page, 'Rio');
  await page.locator('#welcome').waitFor(WAIT);
  let acks = [];
  for (let i = 0; i < 300 && acks.length < 2; i++) {
    acks = await (await fetch(`${url}/_acks`)).json();
    if (acks.length < 2) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  out.acks = acks;
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.locator('#talks, main h1').first().waitFor(WAIT);
  await auditOnce(page, 'talks after hostile live frames');
  out.live = { seen: await inspect(page), talksButton: await page.getByRole('button', { name: /Talks/ }).textContent() };
  await page.screenshot({ path: join(shots, 'live-frames.png'), fullPage: true });
}

const cli = (...args) => peerfed(process.env.CLI_HOME, args);


async function hostilePeer(page) {
  const evil = JSON.parse(process.env.HOSTILE);
  await page.goto(url + '/');
  await joinAs(page, 'Rio');
  await page.locator('#welcome').waitFor(WAIT);
  // The browser asks; the CLI peer reaches out to it with a hostile hello.
  await page.getByRole('button', { name: 'Offer or ask' }).click();
  await page.getByLabel('Ask for support').check();
  await page.getByLabel('What it is about, in your own words').fill('panic at night');
  await page.getByLabel('A few words for others to read').fill('Looking for someone who gets it.');
  await page.getByRole('button', { name: 'Publish' }).click();
  await page.locator('#published').waitFor(WAIT);
  // The CLI's hostile offer, as the directory shows it.
  await eventually(async () => (await page.locator('li.listing').count()) >= 2, 'both listings in Browse');
  await auditOnce(page, 'browse with a hostile listing');
  out.browse = await inspect(page);
  out.browseHtml = await page.locator('#results').innerHTML();
  await page.screenshot({ path: join(shots, 'browse-hostile.png'), fullPage: true });

  const rios = await eventually(() => cli('browse').listings.find((l) => l.topics.includes('panic at night')), "Rio's request at the CLI");
  const reach = cli('reach', rios.id, '--hello', evil.hello);
  await page.getByRole('button', { name: /Talks 1 new/ }).waitFor(WAIT);
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.locator('#talks li').first().waitFor(WAIT);
  await auditOnce(page, 'talks with a hostile reach-out');
  out.talks = await inspect(page);
  await page.locator('#talks li').first().getByRole('button', { name: 'Open' }).click();
  await page.getByRole('button', { name: 'Accept' }).waitFor(WAIT);
  await auditOnce(page, 'a hostile reach-out to answer');
  out.reachOut = await inspect(page);
  await page.getByRole('button', { name: 'Accept' }).click();
  await page.locator('#talk-state', { hasText: 'You are talking.' }).waitFor(WAIT);
  await eventually(() => cli('connections').connections.find((c) => (c.id ?? c.connection) === reach.connection && c.state === 'accepted'), 'the acceptance at the CLI');
  cli('send', reach.connection, evil.message);
  cli('agree', reach.connection, '--helps', evil.terms, '--boundary', evil.terms);
  cli('send', reach.connection, 'after the terms');
  await page.locator('#messages li.message:not(.mine)', { hasText: 'after the terms' }).waitFor(WAIT);
  await auditOnce(page, 'a conversation with hostile messages');
  out.conversation = await inspect(page);
  out.messages = await page.locator('#messages li').allTextContents();
  out.conversationHtml = await page.locator('main').innerHTML();
  await page.screenshot({ path: join(shots, 'conversation-hostile.png'), fullPage: true });
}

const context = await launch(profile);
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error') out.console.push(m.text()); });
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  page.on('dialog', (d) => { out.dialogs.push(d.message()); d.dismiss(); });
  page.on('request', (r) => out.requests.push(new URL(r.url()).origin));
  try {
    if (mode === 'node') await fakeNode(page);
    else await hostilePeer(page);
  } catch (error) {
    // Say where it stopped and what the page showed, for whoever reads the failed test.
    console.error(JSON.stringify({ at: out.at, pageErrors: out.pageErrors, text: await page.evaluate(() => document.body.innerText) }));
    throw error;
  }
} finally {
  await context.close();
}
out.requests = [...new Set(out.requests)];
console.log(JSON.stringify(out));
