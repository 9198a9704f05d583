// The web client's entry point (spec §13.10): read the node this page came from, show who it is
// and its support resources, and let a person join it or come back. All cryptography runs here,
// in the page; keys are made here and never leave it.

import { join, newKeys, peerOf } from './account.js';
import { browseScreen } from './browse.js';
import { conversationScreen, reachScreen, talksScreen } from './conversations.js';
import { deviceId, loadDevice, needsPassphrase, saveDevice, unlockDevice } from './keystore.js';
import { backupPanel, deviceNotice, importScreen, keepKeysFresh } from './device_screens.js';
import { freshToken, nodeDocument, nodeUrl, signIn, whenExpired, whenMoved } from './node.js';
import { offerScreen } from './offer.js';
import { Talk } from './talk.js';
import { renderResources } from './resources.js';
import { busy, field, problem } from './forms.js';
import { el, show, theirs } from './ui.js';
import { setLanguage, t } from './i18n.js';
import { erasedScreen, erasePanel, idleLock, lockPanel } from './lock.js';
import { inviteFrom, invitePanel } from './invite.js';

setLanguage();

const main = document.getElementById('main');
const resources = document.getElementById('resources');
const sections = document.getElementById('sections');
const now = () => Math.floor(Date.now() / 1000);

function welcome(ctx) {
  show(
    main,
    el('h1', { tabindex: '-1', id: 'welcome' }, 'You are in'),
    el('p', {}, 'You joined ', theirs(ctx.doc.name), ctx.name ? ' as ' : '', ctx.name ? theirs(ctx.name) : '', '.'),
    el('p', {}, 'Your keys were made on this device and stay here. This is your id, which others see:'),
    el('p', { class: 'peer-id', id: 'peer-id' }, ctx.peer),
    el('p', { class: 'hint' }, 'Support resources are one tap away at the top of every screen.'),
    backupPanel(ctx),
    ctx.passphrase ? lockPanel(ctx.device) : null,
    erasePanel(ctx, { erased: ctx.device.erased }),
  );
  document.getElementById('welcome').focus();
}

// Signed in: the sections a person can move between, live mail, and the first screen. With
// `movedAt` (the sign-in was refused auth.moved) the page shows what it holds and fetches nothing.
function signedIn(doc, url, keys, session, name, { movedAt, passphrase = null } = {}) {
  // The passphrase stays in this page's memory only, to keep a renewed keyring sealed (§12).
  const ctx = { doc, url, keys, name, passphrase, token: session.token, bundle: session.bundle, peer: peerOf(keys), now };
  const talk = new Talk(ctx);
  ctx.talk = talk;
  const notice = deviceNotice(main);
  notice.clear();
  // The person asked to move the identity back here (spec §13.4): take over, and start again.
  const moveBack = async () => {
    const again = await join(url, keys, { name, device: await deviceId(), takeOver: true });
    talk.stop();
    signedIn(doc, url, keys, again, name, { passphrase });
  };
  // Leaving: locking forgets the keys from memory; erasing has already deleted them everywhere.
  const leave = () => {
    talk.stop();
    idle.stop();
    whenMoved(null);
    whenExpired(null);
    ctx.keys = null;
    ctx.passphrase = null;
    ctx.token = null;
    notice.clear();
    show(sections);
    sections.hidden = true;
  };
  const idle = idleLock(() => ctx.device.lock());
  ctx.device = {
    idle,
    lock: () => {
      leave();
      start();
    },
    erased: (answer) => {
      leave();
      erasedScreen(main, answer, { again: () => joinScreen(doc, url) });
    },
  };
  if (!passphrase) idle.stop(); // keys kept without a passphrase open without one: nothing to lock
  let isMoved = movedAt !== undefined;
  whenMoved((at) => {
    isMoved = true;
    talk.stop();
    notice.moved(at, moveBack);
  });
  if (isMoved) notice.moved(movedAt, moveBack);
  // A session that ran out is opened again from this device, and the key renewed when due.
  whenExpired(async () => {
    const fresh = await signIn(url, keys.seed, { device: await deviceId() });
    ctx.token = fresh.token;
    keepKeysFresh(ctx).catch(() => {}); // tried again at the next sign-in
    return fresh.token;
  });
  if (!isMoved) keepKeysFresh(ctx).catch(() => {});
  let open;
  let stop = () => {};
  let viewing = null;
  const conversation = (c) => {
    stop();
    viewing = c.id;
    c.unread = 0;
    talk.changed(c);
    stop = conversationScreen(main, talk, c);
  };
  const go = {
    home: () => welcome(ctx),
    browse: () => browseScreen(main, ctx, { onReach: (listing) => reachScreen(main, talk, listing, { opened: conversation }) }),
    offer: () =>
      offerScreen(main, ctx, {
        onPublished: () => {
          open('browse')().then(() => {
            const said = el('p', { role: 'status', id: 'published' }, 'Published. Others can find it now.');
            main.insertBefore(said, main.children[1]);
          });
        },
      }),
    talks: () => {
      stop = talksScreen(main, talk, { open: conversation });
    },
  };
  // The section a person is in is marked for screen readers (aria-current) and by sight (style).
  open = (key) => () => {
    stop();
    viewing = null;
    for (const b of sections.querySelectorAll('button')) b.toggleAttribute('aria-current', b.dataset.section === key);
    for (const b of sections.querySelectorAll('[aria-current]')) b.setAttribute('aria-current', 'page');
    return go[key]();
  };
  const button = (key, words) => el('button', { type: 'button', class: 'quiet', 'data-section': key, onclick: open(key) }, words);
  const talksButton = button('talks', 'Talks');
  // The unread count lives in the Talks button's own name, so a screen reader hears it there.
  talk.watch(() => {
    const n = talk.unread;
    show(talksButton, 'Talks', n ? el('span', { class: 'badge' }, ` ${n} new`) : null);
  });
  show(sections, button('home', 'Home'), button('browse', 'Browse'), button('offer', 'Offer or ask'), talksButton);
  sections.hidden = false;
  open('home')();
  talk.restore().then(() => {
    talk.changed(null);
    if (!isMoved) talk.listen(() => viewing, { status: notice.connection, renew: freshToken });
  });
}

function joinScreen(doc, url) {
  const name = field('name', 'A name others will see (optional)', {
    hint: 'Any name you like. It does not need to be your real name.',
    autocomplete: 'nickname',
  });
  const pass = field('passphrase', 'A passphrase to protect your keys on this device', {
    type: 'password',
    hint: 'You will need it to come back. It never leaves this device. Leaving it empty means anyone who uses this device can act as you.',
    autocomplete: 'new-password',
  });
  // An invite link (/#invite=CODE) fills the code in; it is taken from the address bar at once.
  const code = inviteFrom(location.hash);
  if (code) history.replaceState(null, '', location.pathname);
  const invite = doc.registration === 'invite' || code ? field('invite', 'Invite code', { autocomplete: 'off', value: code ?? undefined }) : null;
  const outcome = el('div', { 'aria-live': 'polite' });
  const form = el(
    'form',
    { id: 'join', novalidate: true },
    name.nodes,
    pass.nodes,
    invite ? invite.nodes : null,
    el('p', {}, el('button', { type: 'submit' }, 'Join')),
    outcome,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    busy(form, true);
    show(outcome, el('p', { role: 'status' }, 'Making your keys and joining…'));
    const keys = newKeys(now());
    const chosen = name.input.value.trim();
    let session;
    try {
      session = await join(url, keys, { name: chosen, invite: invite ? invite.input.value.trim() : undefined, device: await deviceId() });
      await saveDevice(keys, pass.input.value, { node: url, name: chosen });
    } catch (error) {
      // Waiting for approval: keep the keys, since a new key would be a new request (spec §13.4).
      if (error.code === 'auth.pending') await saveDevice(keys, pass.input.value, { node: url, name: chosen });
      busy(form, false);
      show(outcome, problem(error));
      return;
    }
    signedIn(doc, url, keys, session, chosen, { passphrase: pass.input.value });
  });
  show(
    main,
    el('h1', {}, 'Join ', theirs(doc.name)),
    el('p', {}, theirs(doc.description)),
    el('p', {}, 'Here you can find people who have been through something similar, and talk with them as equals. No email, phone number or real name is needed.'),
    form,
    code ? invitePanel(location.origin, code) : null,
    el('p', {}, el('button', { type: 'button', class: 'quiet', id: 'from-backup', onclick: () => importScreen(main, url, { done: (keys, session, chosen, passphrase) => signedIn(doc, url, keys, session, chosen, { passphrase }), back: () => joinScreen(doc, url) }) }, t('device.import.start'))),
  );
}

function unlockScreen(doc, url, record) {
  const pass = field('passphrase', 'Your passphrase', { type: 'password', autocomplete: 'current-password' });
  const outcome = el('div', { 'aria-live': 'polite' });
  const form = el('form', { id: 'unlock', novalidate: true }, pass.nodes, el('p', {}, el('button', { type: 'submit' }, 'Open')), outcome);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    busy(form, true);
    show(outcome, el('p', { role: 'status' }, 'Opening your keys…'));
    try {
      const keys = await unlockDevice(record, pass.input.value);
      await comeBack(doc, url, keys, record.name, pass.input.value);
    } catch (error) {
      busy(form, false);
      show(outcome, problem(error));
    }
  });
  show(main, el('h1', {}, 'Welcome back'), el('p', {}, 'Your keys on this device are protected by your passphrase.'), form);
}

// Sign in again with the keys on this device; when another device holds the identity now, show
// what this one holds, and say so (spec §13.4). Throws NodeError, ProtocolError.
async function comeBack(doc, url, keys, name, passphrase = null) {
  let session;
  try {
    session = await join(url, keys, { name, device: await deviceId() });
  } catch (error) {
    if (error.code !== 'auth.moved') throw error;
    signedIn(doc, url, keys, { token: null, bundle: null }, name, { movedAt: error.movedAt, passphrase });
    return;
  }
  signedIn(doc, url, keys, session, name, { passphrase });
}

async function start() {
  const url = nodeUrl(location.origin);
  let doc;
  try {
    doc = await nodeDocument(url);
  } catch (error) {
    show(main, el('h1', {}, 'This community could not be reached'), problem(error));
    return;
  }
  show(document.getElementById('community'), theirs(doc.name));
  document.title = `${doc.name} · Peer support`;
  renderResources(resources, doc);
  resources.hidden = false;
  const record = await loadDevice().catch(() => null);
  if (record && record.node === url && needsPassphrase(record)) unlockScreen(doc, url, record);
  else if (record && record.node === url) {
    const keys = await unlockDevice(record, null);
    await comeBack(doc, url, keys, record.name).catch((error) => show(main, problem(error)));
  } else joinScreen(doc, url);
}

start();
