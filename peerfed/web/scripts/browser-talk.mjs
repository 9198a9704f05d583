// Reach out, accept and talk between a browser peer and a CLI peer on one node (issue 13), in a
// real headless Chromium. The CLI peer (PEERFED_HOME=$CLI_HOME, run with $CLI_PYTHON) already has an
// offer on the node; this script plays both sides in turn and reports what each one saw.
//
//   CLI_PYTHON=... CLI_HOME=... node scripts/browser-talk.mjs NODE_URL SHOTS_DIR PROFILE_DIR
// Prints one JSON document.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { audit, eventually, peerfed } from './browser-kit.mjs';

const [url, shots, profile] = process.argv.slice(2);
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WAIT = { timeout: 60_000 };
const out = { console: [], violations: [], requests: [], cli: {} };

const cli = (...args) => peerfed(process.env.CLI_HOME, args); // Ana
const ben = (...args) => peerfed(process.env.CLI_HOME_2, args);


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

  // A stand-in for the browser's Notification, recording what the page asks and shows: headless
  // Chromium shows nothing, and the test must see that permission is never asked on load.
  await context.addInitScript(() => {
    const log = JSON.parse(sessionStorage.getItem('notes') ?? '{"asked":0,"shown":[]}');
    const keep = () => sessionStorage.setItem('notes', JSON.stringify(log));
    globalThis.Notification = class {
      static permission = log.asked ? 'granted' : 'default';
      static async requestPermission() {
        log.asked += 1;
        keep();
        globalThis.Notification.permission = 'granted';
        return 'granted';
      }
      constructor(title, options = {}) {
        log.shown.push({ title, body: options.body ?? null });
        keep();
      }
    };
  });
  const notes = () => page.evaluate(() => JSON.parse(sessionStorage.getItem('notes') ?? '{"asked":0,"shown":[]}'));
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

  // Terms (spec §9.3): Ana proposes at the CLI; the page shows them before agreeing, by whom and
  // until when, and countersigns; then the page proposes other terms and the CLI sees them pending.
  const conn = reached.id ?? reached.connection;
  // They also promise to forget each message a year after it was sent (spec §9.7): shown with the terms.
  cli('agree', conn, '--helps', 'Listening at night, <u>no advice</u>.', '--format', 'text', '--until', '2099-01-31', '--boundary', 'No calls', '--forget', '365d');
  await page.locator('#terms-proposal', { hasText: 'They proposed these terms' }).waitFor(WAIT);
  out.proposed = await page.locator('#terms-proposed').innerText();
  await page.screenshot({ path: join(shots, 'terms-proposed-phone.png'), fullPage: true });
  await page.getByRole('button', { name: 'Agree to these terms' }).click();
  await page.locator('#terms-in-force').waitFor(WAIT);
  out.agreed = await page.locator('#terms-agreed').innerText();
  out.cli.inForce = await eventually(() => cli('agreement', conn).in_force, 'the countersignature at the CLI');
  await page.locator('#terms-other summary').click();
  await page.getByLabel('What would help', { exact: true }).fill('Company on Sunday evenings.');
  // The form starts from the terms in force (a year); Rio proposes a month instead (spec §9.7).
  const forget = page.getByLabel('Deleting messages (optional)');
  out.forgetChoices = await forget.locator('option').allTextContents();
  out.forgetStart = await forget.locator('option:checked').textContent();
  await forget.selectOption({ label: 'Delete each message after 30 days' });
  await page.screenshot({ path: join(shots, 'terms-form-phone.png'), fullPage: true });
  out.violations.push(...(await audit(page, 'terms-form')));
  await page.getByRole('button', { name: 'Send these terms' }).click();
  await page.locator('#terms-proposal', { hasText: 'You proposed these terms' }).waitFor(WAIT);
  await page.screenshot({ path: join(shots, 'terms-mine-phone.png'), fullPage: true });
  out.cli.pending = await eventually(() => cli('agreement', conn).pending, "the browser's proposal at the CLI");

  // Rio reports Ana to Rio's node, choosing to show what Ana sent (spec §13.5, §12); an operator
  // resolves it with the admin CLI and "Your reports" shows what the moderators did.
  await page.locator('details.report summary').click();
  await page.locator('#report fieldset').waitFor(WAIT);
  out.reportChoices = await page.locator('#report fieldset label').allTextContents();
  out.reportExplained = await page.locator('#report-disclose-hint').textContent();
  await page.getByLabel('What happened, in your own words').fill('They pushed me to <b>call</b>.');
  await page.getByLabel(/and what Ana sent me/).check();
  await page.screenshot({ path: join(shots, 'report-phone.png'), fullPage: true });
  await page.getByRole('button', { name: 'Send report' }).click();
  out.reportSent = await page.locator('#report-sent').textContent();
  const admin = (...args) => execFileSync(process.env.CLI_PYTHON, ['-m', 'peerfed', 'admin', '--data', process.env.NODE_DATA, ...args], { encoding: 'utf8', timeout: 60_000 });
  const [filed] = JSON.parse(admin('--json', 'reports', 'list'));
  out.moderatorSaw = admin('reports', 'show', String(filed.id));
  admin('reports', 'resolve', String(filed.id), '--outcome', 'We spoke with them. <i>Thank you</i>.');
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.getByRole('button', { name: 'Your reports' }).click();
  await page.locator('#reports li').waitFor(WAIT);
  out.reports = await page.locator('#reports li').allInnerTexts();
  await page.screenshot({ path: join(shots, 'reports-phone.png'), fullPage: true });
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.locator('#talks li', { hasText: 'You reached out to Ana' }).getByRole('button', { name: 'Open' }).click();
  // Ana countersigns Rio's terms at the CLI: the month to forget is in force at both ends.
  cli('agree', conn, '--accept');
  await page.locator('#terms-agreed', { hasText: 'Company on Sunday evenings.' }).waitFor(WAIT);
  out.agreedMine = await page.locator('#terms-agreed').innerText();
  out.cli.inForceMine = cli('agreement', conn).in_force;
  await page.screenshot({ path: join(shots, 'terms-forget-phone.png'), fullPage: true });
  out.violations.push(...(await audit(page, 'terms-forget')));

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

  // Rio turns notices on (the only time permission is asked), then blocks Ana in the second one.
  out.notesBefore = await notes();
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.getByRole('button', { name: 'Tell me when a message arrives' }).click();
  await page.locator('#notify-state', { hasText: 'only “New message”' }).waitFor(WAIT);
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
  out.titleAfterBen = await page.title();
  out.notesAfterBen = await notes();
  out.afterBlock = await page.locator('#messages li').allTextContents();
  await page.getByRole('button', { name: /Talks/ }).click();
  out.talksAfterBlock = await page.locator('#talks li h3').allTextContents();

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
  out.talksAfterReload = await page.locator('#talks li h3').allTextContents();
  await page.locator('#talks li', { hasText: 'Ben' }).getByRole('button', { name: 'Open' }).click();
  out.benAfterReload = await page.locator('#messages li').allTextContents();
  await page.getByLabel('Your message').fill('After it opened again.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#messages li.message.mine', { hasText: 'After it opened again.' }).waitFor(WAIT);
  out.cli.benRead = await eventually(() => {
    const read = ben('read', benConnection.id);
    return read.messages.length === 2 ? read : null;
  }, "both of the browser's messages at Ben's CLI");

  // Rio unblocks Ana from the list of blocked people; what Ana sends from now on arrives.
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.getByRole('button', { name: 'People you blocked' }).click();
  out.blockedList = await page.locator('#blocked li h3').allTextContents();
  await page.screenshot({ path: join(shots, 'blocked-phone.png'), fullPage: true });
  await page.getByRole('button', { name: 'Unblock Ana' }).click();
  out.unblocked = await page.locator('#unblocked').textContent();
  out.blockedAfter = await page.locator('#blocked li').allTextContents();
  cli('send', second.connection, 'Glad to be back.');
  await page.getByRole('button', { name: /Talks 1 new/ }).waitFor(WAIT);
  out.titleAfterUnblock = await page.title();
  out.notesAtEnd = await notes();
} finally {
  await context.close();
}
out.requests = [...new Set(out.requests)];
console.log(JSON.stringify(out));
