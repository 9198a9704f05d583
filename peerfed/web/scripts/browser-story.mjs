// The whole story between two browser peers on two federated nodes (issue 13), in two headless
// Chromium profiles: Noa (on node B) offers support; Rio (on node A) browses, sees Noa's offer
// (it travelled from B), and reaches out; Noa accepts; Rio proposes terms and Noa agrees; both
// talk live; Rio reports Noa to node A, showing what Noa sent; an operator resolves it; Rio ends
// and asks for deletion. Every screen either reaches is audited with axe-core (WCAG 2.2 A, AA).
//
//   CLI_PYTHON=... NODE_A_DATA=... node scripts/browser-story.mjs NODE_A_URL NODE_B_URL SHOTS_DIR PROFILES_DIR
// Prints one JSON document: what each page showed, and every audit's violations.

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { audit, DESKTOP, launch, PHONE } from './browser-kit.mjs';

const [urlA, urlB, shots, profiles] = process.argv.slice(2);
const WAIT = { timeout: 60_000 };
const out = { console: [], requests: [], violations: [], audited: [], rio: {}, noa: {} };
// The private words of the story: the test looks for each in the nodes' files afterwards.
const WORDS = {
  hello: 'Hi Noa, the nights are long and loud in my head.',
  reply: 'I am glad you wrote. Nights were like that for me.',
  helps: 'Someone to write to before sleep, no advice.',
  boundary: 'No calls after midnight',
  noaSays: 'What usually helps you wind down?',
  rioSays: 'Writing things down, and a warm drink.',
  reason: 'Nothing wrong really, testing the report path.',
};
out.words = WORDS;

async function check(page, screen, who) {
  out.audited.push(`${who}:${screen}`);
  out.violations.push(...(await audit(page, `${who}:${screen}`)));
  await page.screenshot({ path: join(shots, `${who}-${screen}.png`), fullPage: true });
}

async function open(profile, who) {
  const context = await launch(join(profiles, who), { viewport: PHONE });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(`${who}: ${m.text()}`); });
  page.on('pageerror', (e) => out.console.push(`${who}: ${e}`));
  page.on('request', (r) => out.requests.push(`${who} ${new URL(r.url()).origin}`));
  return { context, page };
}

async function joinAs(page, url, name, who) {
  await page.goto(url + '/');
  await page.locator('h1', { hasText: 'Join' }).waitFor(WAIT);
  await check(page, 'join', who);
  await page.getByLabel('A name others will see').fill(name);
  await page.getByRole('button', { name: 'Join' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  await check(page, 'welcome', who);
}

const talks = (page) => page.getByRole('button', { name: /^Talks/ });

const noa = await open(profiles, 'noa');
const rio = await open(profiles, 'rio');
try {
  // Noa joins node B and offers support.
  await joinAs(noa.page, urlB, 'Noa', 'noa');
  await noa.page.getByRole('button', { name: 'Offer or ask' }).click();
  await noa.page.locator('h1', { hasText: 'Offer or ask for support' }).waitFor(WAIT);
  await check(noa.page, 'offer', 'noa');
  await noa.page.getByLabel('What it is about, in your own words').fill('sleepless nights');
  await noa.page.getByLabel('A few words for others to read').fill('I have been there. Happy to write in the evenings.');
  await noa.page.getByRole('button', { name: 'Publish' }).click();
  await noa.page.locator('#published').waitFor(WAIT);

  // Rio joins node A and browses until Noa's offer has travelled there (a bounded number of looks).
  await joinAs(rio.page, urlA, 'Rio', 'rio');
  await rio.page.getByRole('button', { name: 'Browse' }).click();
  const offer = rio.page.locator('#results li.listing', { hasText: 'sleepless nights' });
  for (let i = 0; i < 60 && !(await offer.count()); i++) {
    await rio.page.locator('#results-count').waitFor(WAIT);
    if (await offer.count()) break;
    await rio.page.locator('#results-count').evaluate((h) => h.remove());
    await new Promise((resolve) => setTimeout(resolve, 250)); // federation pushes within seconds
    await rio.page.getByRole('button', { name: 'Show' }).click();
  }
  await offer.waitFor(WAIT);
  await check(rio.page, 'browse', 'rio');
  await offer.locator('details.report summary').click();
  await rio.page.locator('#report').waitFor(WAIT);
  await check(rio.page, 'browse-report', 'rio');
  await offer.locator('details.report summary').click();
  await offer.getByRole('button', { name: 'Reach out' }).click();
  await check(rio.page, 'reach', 'rio');
  await rio.page.getByLabel('A first hello').fill(WORDS.hello);
  await rio.page.getByRole('button', { name: 'Send hello' }).click();
  await rio.page.locator('#talk-state', { hasText: 'Waiting for them to answer.' }).waitFor(WAIT);
  await check(rio.page, 'waiting', 'rio');

  // Noa sees the reach-out arrive live, reads the hello and accepts.
  await noa.page.getByRole('button', { name: /Talks 1 new/ }).waitFor(WAIT);
  await talks(noa.page).click();
  out.noa.talks = await noa.page.locator('#talks li').allInnerTexts();
  out.noa.pending = await noa.page.locator('#pending-bound').textContent();
  await check(noa.page, 'talks', 'noa');
  await noa.page.locator('#talks li', { hasText: 'Reach-out from Rio' }).getByRole('button', { name: 'Open' }).click();
  out.noa.hello = await noa.page.locator('#messages li.hello').first().innerText();
  await check(noa.page, 'answer', 'noa');
  await noa.page.getByLabel('A few words back (optional)').fill(WORDS.reply);
  await noa.page.getByRole('button', { name: 'Accept' }).click();
  await noa.page.locator('#talk-state', { hasText: 'You are talking.' }).waitFor(WAIT);

  // Rio, live: the acceptance arrives; Rio proposes terms.
  await rio.page.locator('#talk-state', { hasText: 'You are talking.' }).waitFor(WAIT);
  out.rio.reply = await rio.page.locator('#messages li.hello').nth(1).innerText();
  await rio.page.locator('#terms-other summary').click();
  await rio.page.getByLabel('What would help', { exact: true }).fill(WORDS.helps);
  await rio.page.getByLabel('Writing').check();
  await rio.page.getByLabel('Until (optional)').fill('2099-03-01');
  await rio.page.getByLabel('Boundaries (optional)').fill(WORDS.boundary);
  await check(rio.page, 'terms-propose', 'rio');
  await rio.page.getByRole('button', { name: 'Send these terms' }).click();
  await rio.page.locator('#terms-proposal', { hasText: 'You proposed these terms' }).waitFor(WAIT);

  // Noa sees what was proposed, by whom and until when, before agreeing; then agrees.
  await noa.page.locator('#terms-proposal', { hasText: 'They proposed these terms' }).waitFor(WAIT);
  out.noa.proposed = await noa.page.locator('#terms-proposed').innerText();
  await check(noa.page, 'terms-proposed', 'noa');
  await noa.page.getByRole('button', { name: 'Agree to these terms' }).click();
  await noa.page.locator('#terms-in-force').waitFor(WAIT);
  out.noa.agreed = await noa.page.locator('#terms-agreed').innerText();
  await rio.page.locator('#terms-in-force').waitFor(WAIT);
  out.rio.agreed = await rio.page.locator('#terms-agreed').innerText();

  // Live both ways.
  await noa.page.getByLabel('Your message').fill(WORDS.noaSays);
  await noa.page.getByRole('button', { name: 'Send', exact: true }).click();
  await rio.page.locator('#messages li.message:not(.mine)', { hasText: WORDS.noaSays }).waitFor(WAIT);
  await rio.page.getByLabel('Your message').fill(WORDS.rioSays);
  await rio.page.getByRole('button', { name: 'Send', exact: true }).click();
  await noa.page.locator('#messages li.message:not(.mine)', { hasText: WORDS.rioSays }).waitFor(WAIT);
  await rio.page.locator('#messages li.message.mine', { hasText: WORDS.rioSays }).waitFor(WAIT); // its send may finish after Noa has it
  out.noa.messages = await noa.page.locator('#messages li.message').allInnerTexts();
  out.rio.messages = await rio.page.locator('#messages li.message').allInnerTexts();
  await check(noa.page, 'conversation', 'noa');
  await rio.page.setViewportSize(DESKTOP);
  await check(rio.page, 'conversation-desktop', 'rio');
  await rio.page.setViewportSize(PHONE);

  // Rio reports Noa to node A, choosing to show what Noa sent; an operator resolves it.
  await rio.page.locator('details.report summary').click();
  await rio.page.locator('#report fieldset').waitFor(WAIT);
  await rio.page.getByLabel('What happened, in your own words').fill(WORDS.reason);
  await rio.page.getByLabel(/and what Noa sent me/).check();
  await check(rio.page, 'report', 'rio');
  await rio.page.getByRole('button', { name: 'Send report' }).click();
  out.rio.reportSent = await rio.page.locator('#report-sent').textContent();
  const admin = (...args) =>
    execFileSync(process.env.CLI_PYTHON, ['-m', 'peerfed', 'admin', '--data', process.env.NODE_A_DATA, ...args], { encoding: 'utf8', timeout: 60_000 });
  const [filed] = JSON.parse(admin('--json', 'reports', 'list'));
  out.moderatorSaw = admin('reports', 'show', String(filed.id));
  admin('reports', 'resolve', String(filed.id), '--outcome', 'Thank you, nothing to do.');
  await talks(rio.page).click();
  await check(rio.page, 'talks', 'rio');
  await rio.page.getByRole('button', { name: 'Your reports' }).click();
  await rio.page.locator('#reports li').waitFor(WAIT);
  out.rio.reports = await rio.page.locator('#reports li').allInnerTexts();
  await check(rio.page, 'reports', 'rio');
  await talks(rio.page).click();
  await rio.page.getByRole('button', { name: 'People you blocked' }).click();
  await check(rio.page, 'blocked', 'rio');

  // Rio ends and asks for deletion: both pages show it ended, and neither keeps the words.
  await talks(rio.page).click();
  await rio.page.locator('#talks li', { hasText: 'You reached out to Noa' }).getByRole('button', { name: 'Open' }).click();
  await rio.page.getByRole('button', { name: 'End and delete our words' }).click();
  await rio.page.locator('#talk-state', { hasText: 'You ended this conversation.' }).waitFor(WAIT);
  out.rio.ended = await rio.page.locator('#talk-state').textContent();
  out.rio.endedMessages = await rio.page.locator('#messages li').count();
  await check(rio.page, 'ended', 'rio');
  await noa.page.locator('#talk-state', { hasText: 'They ended this conversation.' }).waitFor(WAIT);
  out.noa.ended = await noa.page.locator('#talk-state').textContent();
  out.noa.endedMessages = await noa.page.locator('#messages li').count();
  out.noa.endedTerms = await noa.page.locator('#terms-agreed').count();
  await check(noa.page, 'ended', 'noa');
} finally {
  await noa.context.close();
  await rio.context.close();
}
out.requests = [...new Set(out.requests)].sort();
console.log(JSON.stringify(out));
