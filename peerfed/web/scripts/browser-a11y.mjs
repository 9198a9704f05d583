// Every existing screen, audited (issue 13, item 5): the story of browser-talk.mjs told once in each
// interface language (English, Spanish, Arabic right to left), and at each screen axe-core's WCAG
// 2.2 A/AA audit and a full-page screenshot at phone (390x844) and desktop (1280x900) sizes. The
// CLI peer Ana (PEERFED_HOME=$CLI_HOME, run with $CLI_PYTHON) already offers support on the node.
//
//   CLI_PYTHON=... CLI_HOME=... node scripts/browser-a11y.mjs NODE_URL SHOTS_DIR PROFILE_DIR
// Prints one JSON document: { violations: [...], screens: [...], pages: {...}, moving: [...], console: [...] }.

import { join } from 'node:path';
import { audit, DESKTOP, eventually, launch, peerfed, PHONE } from './browser-kit.mjs';

const [url, shots, profile] = process.argv.slice(2);
const WAIT = { timeout: 60_000 };
const PEOPLE = { en: 'Rio', es: 'Lía', ar: 'Rami' };
const PASSPHRASE = 'quiet tea after midnight';
const out = { violations: [], screens: [], pages: {}, moving: [], console: [], requests: [] };

const ana = (...args) => peerfed(process.env.CLI_HOME, args);


async function tell(lang) {
  const name = PEOPLE[lang];
  const topic = `panic at night ${lang}`;
  const context = await launch(join(profile, lang), { locale: 'en-US' });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(`${lang}: ${m.text()}`); });
  page.on('pageerror', (e) => out.console.push(`${lang}: ${e}`));
  page.on('request', (r) => out.requests.push(new URL(r.url()).origin));
  // One screen: audited and photographed at both sizes, then back to the phone.
  const screen = async (what) => {
    for (const [size, viewport] of [['phone', PHONE], ['desktop', DESKTOP]]) {
      await page.setViewportSize(viewport);
      out.violations.push(...(await audit(page, `${lang}/${what}/${size}`)));
      await page.screenshot({ path: join(shots, `${lang}-${what}-${size}.png`), fullPage: true });
    }
    await page.setViewportSize(PHONE);
    // In English, each screen is audited again in the dark colour scheme with reduced motion asked
    // for; nothing on the page may then move (no running animation, no transition time).
    if (lang === 'en') {
      await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
      out.violations.push(...(await audit(page, `${lang}/${what}/dark`)));
      out.moving.push(...(await page.evaluate(() => [
        ...document.getAnimations().map((a) => `animation ${a.animationName ?? a.id}`),
        ...[...document.querySelectorAll('*')].filter((e) => getComputedStyle(e).transitionDuration.split(',').some((d) => parseFloat(d) > 0)).map((e) => `transition on ${e.tagName}`),
      ])));
      await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'no-preference' });
    }
    out.screens.push(`${lang}/${what}`);
  };
  const section = (key) => page.locator(`#sections [data-section=${key}]`).click();
  try {
    await page.goto(url + '/');
    await page.locator('#join').waitFor(WAIT);
    if (lang !== 'en') await page.locator('#language').selectOption(lang);
    await page.waitForFunction((tag) => document.documentElement.lang === tag, lang, WAIT);
    const seen = { dir: await page.evaluate(() => document.documentElement.dir) };
    seen.joinTitle = await page.locator('h1').textContent();
    await screen('join');
    await page.locator('#name').fill(name);
    await page.locator('#passphrase').fill(PASSPHRASE);
    await page.locator('#join button[type=submit]').click();
    await page.locator('#welcome').waitFor(WAIT);
    seen.sections = await page.locator('#sections button').allTextContents();
    await screen('welcome');

    await section('offer');
    await page.locator('#offer').waitFor(WAIT);
    await page.locator('#offer button[type=submit]').click();
    seen.refused = await page.locator('#offer [role=alert]').textContent(WAIT);
    await screen('offer-refused');
    await page.locator('#topics').fill(topic);
    await page.locator('#summary').fill('Awake at three, happy to write.');
    await page.locator('#offer button[type=submit]').click();
    await page.locator('#published').waitFor(WAIT);
    await page.locator('#results-count').waitFor(WAIT);
    seen.results = await page.locator('#results li.listing h3').allTextContents();
    await screen('browse');

    await page.locator('li.listing', { hasText: 'grief' }).locator('button').click();
    await page.locator('#reach').waitFor(WAIT);
    await page.locator('#reach button[type=submit]').click();
    await page.locator('#reach [role=alert]').waitFor(WAIT);
    await screen('reach-refused');
    await page.locator('#hello').fill(`Hello from ${name}.`);
    await page.locator('#reach button[type=submit]').click();
    await page.locator('#messages li.hello').waitFor(WAIT);
    await screen('conversation-waiting');

    const reached = await eventually(() => ana('connections').connections.find((c) => c.name === name && c.state === 'reached-out'), `${name}'s reach-out at the CLI`);
    ana('accept', reached.id, '--reply', 'Of course.');
    ana('send', reached.id, 'Glad you wrote.');
    await page.locator('#messages li.message:not(.mine)').waitFor(WAIT);
    await page.locator('#message').fill('Thank you.');
    await page.locator('#compose button[type=submit]').click();
    await page.locator('#messages li.message.mine').waitFor(WAIT);
    seen.messagesLive = await page.locator('#messages').getAttribute('aria-live');
    await screen('conversation');

    // Ana reaches out to this person's offer: the Talks list, the answer form, accepting, ending, blocking.
    const mine = await eventually(() => ana('browse').listings.find((l) => l.topics.includes(topic)), `${name}'s offer at the CLI`);
    ana('reach', mine.id, '--hello', 'I know those nights too.');
    await page.locator('#sections .badge').waitFor(WAIT);
    await section('talks');
    await page.locator('#talks li').nth(1).waitFor(WAIT);
    seen.talks = await page.locator('#talks li h3').allTextContents();
    await screen('talks');
    await page.locator('#talks li', { has: page.locator('.unread') }).locator('button').click();
    await page.locator('#answer').waitFor(WAIT);
    await screen('answer');
    await page.locator('#answer button').first().click();
    await page.locator('#compose').waitFor(WAIT);
    await page.locator('.leave button').first().click();
    await page.locator('#compose').waitFor({ state: 'detached', ...WAIT });
    seen.ended = await page.locator('#talk-state').textContent();
    await screen('ended');
    await page.locator('.leave button').click();
    seen.blocked = await page.locator('.leave [role=status]').textContent(WAIT);
    await screen('blocked');

    // The support resources, one tap away: the link moves focus to them.
    await page.locator('.help').click();
    await page.locator('#resources-title').scrollIntoViewIfNeeded();
    await screen('resources');

    // Coming back: the passphrase screen, and a wrong passphrase said plainly.
    await page.reload();
    await page.locator('#unlock').waitFor(WAIT);
    await screen('unlock');
    await page.locator('#passphrase').fill('not it');
    await page.locator('#unlock button[type=submit]').click();
    seen.wrong = await page.locator('#unlock [role=alert]').textContent(WAIT);
    await screen('unlock-refused');
    out.pages[lang] = seen;
  } finally {
    await context.close();
  }
}

for (const lang of ['en', 'es', 'ar']) await tell(lang);
out.requests = [...new Set(out.requests)];
console.log(JSON.stringify(out));
