// The story by keyboard alone (issue 13, item 5): join, offer, browse, reach out, accept, send and end
// in headless Chromium using only Tab, Shift+Tab, Enter, Space and typing (no clicks, no
// element.click()), with a CLI peer Ana (PEERFED_HOME=$CLI_HOME, run with $CLI_PYTHON) on the other
// side. After each step it records where the focus is, so the test can check that it moves to the
// new screen's heading after navigation and to the refusal when a form is refused. Every screen it
// reaches is audited with axe-core.
//
//   CLI_PYTHON=... CLI_HOME=... node scripts/browser-keyboard.mjs NODE_URL SHOTS_DIR PROFILE_DIR
// Prints one JSON document: { focus: { step: {...} }, violations: [...], cli: {...}, console: [...] }.

import { join } from 'node:path';
import { audit, eventually, launch, peerfed } from './browser-kit.mjs';

const [url, shots, profile] = process.argv.slice(2);
const WAIT = { timeout: 60_000 };
const out = { focus: {}, violations: [], cli: {}, console: [], requests: [] };

const ana = (...args) => peerfed(process.env.CLI_HOME, args);


const context = await launch(profile, { locale: 'en-US' });
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.text()); });
  page.on('pageerror', (e) => out.console.push(String(e)));
  page.on('request', (r) => out.requests.push(new URL(r.url()).origin));

  // What has the focus now: its tag, id, role, words, and whether the focus ring is drawn.
  const focused = () => page.evaluate(() => {
    const a = document.activeElement;
    const style = getComputedStyle(a);
    return {
      tag: a.tagName.toLowerCase(), id: a.id, role: a.getAttribute('role'), text: a.textContent.trim().slice(0, 120),
      ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
    };
  });
  const note = async (step) => {
    out.focus[step] = await focused();
    return out.focus[step];
  };
  const key = (name) => page.keyboard.press(name);
  // Tab (or Shift+Tab) until the focused element matches `selector` (and, if given, holds `words`).
  const tabTo = async (selector, { back = false, words = null } = {}) => {
    for (let i = 0; i < 80; i++) {
      const here = await page.evaluate(([sel, w]) => {
        const a = document.activeElement;
        return Boolean(a && a.matches(sel) && (!w || (a.closest('li') ?? a).textContent.includes(w)));
      }, [selector, words]);
      if (here) return;
      await key(back ? 'Shift+Tab' : 'Tab');
    }
    throw new Error(`could not Tab to ${selector}`);
  };
  const screen = async (what) => {
    out.violations.push(...(await audit(page, what)));
    await page.screenshot({ path: join(shots, `${what}.png`), fullPage: true });
  };

  // Join: the name, then the passphrase, then Join, all by Tab and typing.
  await page.goto(url + '/');
  await page.locator('#join').waitFor(WAIT);
  await screen('join');
  await tabTo('#name');
  await page.keyboard.type('Kai');
  await key('Tab');
  await note('afterName');
  await page.keyboard.type('a slow walk home');
  await key('Tab');
  await note('afterPassphrase');
  await key('Enter');
  await page.locator('#welcome').waitFor(WAIT);
  await note('joined');
  await screen('welcome');

  // Offer: the section by Enter; Publish with nothing written is refused; then written and published.
  await tabTo('#sections [data-section=offer]');
  await key('Enter');
  await page.locator('#offer').waitFor(WAIT);
  await note('offer');
  await tabTo('#offer button[type=submit]');
  await key('Enter');
  await page.locator('#offer [role=alert]').waitFor(WAIT);
  await note('offerRefused');
  await screen('offer-refused');
  await tabTo('#topics', { back: true });
  await page.keyboard.type('long nights');
  await key('Tab');
  await note('afterTopics');
  await page.keyboard.type('Writing helps me; happy to write back.');
  await tabTo('#offer button[type=submit]');
  await key('Enter');
  await page.locator('#published').waitFor(WAIT);
  await page.locator('#results-count').waitFor(WAIT);
  await note('published');
  await screen('browse');

  // Browse to Ana's offer and reach out: an empty hello is refused, then the hello is sent.
  await tabTo('#results li.listing button', { words: 'grief' });
  await key('Enter');
  await page.locator('#reach').waitFor(WAIT);
  await note('reach');
  await key('Tab');
  await note('reachField');
  await key('Tab');
  await key('Space');
  await page.locator('#reach [role=alert]').waitFor(WAIT);
  await note('reachRefused');
  await screen('reach-refused');
  await key('Shift+Tab');
  await key('Shift+Tab');
  await note('backToHello');
  await page.keyboard.type('Hello Ana, from Kai.');
  await key('Tab');
  await key('Enter');
  await page.locator('#messages li.hello').waitFor(WAIT);
  await note('reached');
  await screen('conversation-waiting');

  // Ana accepts and writes; Kai answers from the keyboard.
  const reached = await eventually(() => ana('connections').connections.find((c) => c.name === 'Kai'), "Kai's reach-out at the CLI");
  ana('accept', reached.id, '--reply', 'Of course.');
  ana('send', reached.id, 'Glad you wrote.');
  await page.locator('#messages li.message:not(.mine)').waitFor(WAIT);
  await tabTo('#message');
  await page.keyboard.type('Thank you, Ana.');
  await key('Tab');
  await key('Enter');
  await page.locator('#messages li.message.mine').waitFor(WAIT);
  await note('sent');
  await screen('conversation');

  // Ana reaches out to Kai's offer; Kai opens it from Talks and accepts with Space, then writes.
  const kais = await eventually(() => ana('browse').listings.find((l) => l.topics.includes('long nights')), "Kai's offer at the CLI");
  const second = ana('reach', kais.id, '--hello', 'Nights are long here too.');
  await page.locator('#sections .badge').waitFor(WAIT);
  await tabTo('#sections [data-section=talks]', { back: true });
  await key('Enter');
  await page.locator('#talks').waitFor(WAIT);
  await note('talks');
  await screen('talks');
  await tabTo('#talks li button', { words: 'Reach-out from Ana' });
  await key('Enter');
  await page.locator('#answer').waitFor(WAIT);
  await note('answer');
  await screen('answer');
  await tabTo('#reply');
  await page.keyboard.type('Yes, let us talk.');
  await key('Tab');
  await note('acceptButton');
  await key('Space');
  await page.locator('#compose').waitFor(WAIT);
  await note('accepted');
  await page.keyboard.type('Hello again.');
  await key('Tab');
  await key('Enter');
  await page.locator('#messages li.message.mine').waitFor(WAIT);
  out.cli.accepted = await eventually(() => ana('connections').connections.find((c) => c.id === second.connection && c.state === 'accepted'), 'the acceptance at the CLI');

  // End it, by Enter on "End conversation": the focus goes to what says it ended.
  await tabTo('.leave button', { words: 'End conversation' });
  await note('endButton');
  await key('Enter');
  await page.locator('#compose').waitFor({ state: 'detached', ...WAIT });
  await note('ended');
  await screen('ended');
  out.cli.ended = await eventually(() => ana('connections').connections.find((c) => c.id === second.connection && c.state === 'ended'), 'the end at the CLI');
} finally {
  await context.close();
}
out.requests = [...new Set(out.requests)];
console.log(JSON.stringify(out));
