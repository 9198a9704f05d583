// The web client's entry point (spec §13.10): read the node this page came from, show who it is
// and its support resources, and let a person join it or come back. All cryptography runs here,
// in the page; keys are made here and never leave it.

import { join, newKeys, peerOf } from './account.js';
import { browseScreen } from './browse.js';
import { conversationScreen, reachScreen, talksScreen } from './conversations.js';
import { deviceId, loadDevice, needsPassphrase, saveDevice, unlockDevice } from './keystore.js';
import { backupPanel, deviceNotice, importScreen, keepKeysFresh } from './device_screens.js';
import { call, freshToken, nodeDocument, nodeUrl, signIn, whenExpired, whenMoved } from './node.js';
import { forgetSecrets, prekeyFor, secretsFor } from './sessions.js';
import { offerScreen } from './offer.js';
import { Talk } from './talk.js';
import { renderResources } from './resources.js';
import { listingReport, reportsScreen } from './reports_view.js';
import { blockedScreen } from './blocked_view.js';
import { watchArrivals } from './notify.js';
import { busy, field, problem, refused } from './forms.js';
import { el, show, theirs } from './ui.js';
import { setLanguage, t, tn } from './i18n.js';
import { languageChooser } from './language.js';
import { erasedScreen, erasePanel, idleLock, lockPanel } from './lock.js';
import { inviteFrom, invitePanel } from './invite.js';

setLanguage();

const main = document.getElementById('main');
const resources = document.getElementById('resources');
const sections = document.getElementById('sections');
const now = () => Math.floor(Date.now() / 1000);
// What is on screen, so choosing a language redraws it in place (the header, then the screen).
let known = null;
let redraw = () => {};
function frame() {
  show(document.getElementById('community'), known ? theirs(known.name) : t('app.name'));
  document.querySelector('.help').textContent = t('resources.title');
  sections.setAttribute('aria-label', t('app.sections'));
  document.title = known ? t('app.title', { name: known.name }) : t('app.name');
  if (known) renderResources(resources, known);
}
const chooser = languageChooser(() => {
  frame();
  redraw();
});
document.querySelector('.bar').append(chooser.nodes);
frame();
document.getElementById('status')?.replaceChildren(t('app.loading'));

function welcome(ctx) {
  redraw = () => welcome(ctx);
  show(
    main,
    el('h1', { tabindex: '-1', id: 'welcome' }, t('home.title')),
    el('p', {}, ...(ctx.name ? tn('home.joined_as', { node: theirs(ctx.doc.name), name: theirs(ctx.name) }) : tn('home.joined', { node: theirs(ctx.doc.name) }))),
    el('p', { id: 'keys-origin' }, t(ctx.fromBackup ? 'home.keys_backup' : 'home.keys')),
    el('p', { class: 'peer-id', id: 'peer-id' }, ctx.peer),
    el('p', { class: 'hint' }, t('home.hint')),
    backupPanel(ctx),
    ctx.passphrase ? lockPanel(ctx.device) : null,
    erasePanel(ctx, { erased: ctx.device.erased }),
  );
  document.getElementById('welcome').focus();
}

// Signed in: the sections a person can move between, live mail, and the first screen. With
// `movedAt` (the sign-in was refused auth.moved) the page shows what it holds and fetches nothing.
// `fromBackup`: the keys came from a backup, so the home screen does not say they were made here.
function signedIn(doc, url, keys, session, name, { movedAt, passphrase = null, fromBackup = false } = {}) {
  // The passphrase stays in this page's memory only, to keep a renewed keyring sealed (§12).
  const ctx = { doc, url, keys, name, passphrase, fromBackup, token: session.token, bundle: session.bundle, peer: peerOf(keys), now };
  const talk = new Talk(ctx);
  ctx.talk = talk;
  const notice = deviceNotice(main);
  notice.clear();
  let restored = Promise.resolve(); // the conversations, read back from IndexedDB below
  // The person asked to move the identity back here (spec §13.4): take over, and start again. The
  // sign-in publishes this page's bundle; then, before anything is sent (spec §9.5, R-9.5-5 and
  // R-9.5-6), messages are numbered from the take-over's floor, every scheme-2 session goes (the
  // other device may have moved each ratchet on) and one-time pre-keys this page holds go up, since
  // the node deleted the stock at the device change (§13.5). Throws NodeError, ProtocolError.
  const moveBack = async () => {
    await restored; // the floor is stored with the conversations, so they are in memory first
    const again = await join(url, keys, { name, device: await deviceId(), takeOver: true, prekeyFor: prekeyFor(keys.seed, now) });
    talk.stop();
    ctx.token = again.token;
    await talk.tookOver(now(), { sessions: true });
    await replenish();
    signedIn(doc, url, keys, again, name, { passphrase, fromBackup });
  };
  // Leaving: locking forgets the keys from memory; erasing has already deleted them everywhere.
  const leave = () => {
    stop(); // the screen's watchers and its forgetting timer (spec §9.7)
    talk.stop();
    idle.stop();
    whenMoved(null);
    whenExpired(null);
    ctx.keys = null;
    forgetSecrets();
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
    replenish().catch(() => {});
    return fresh.token;
  });
  // One-time pre-keys for peers who start a session with this device (spec §13.5, §14.1).
  // One at a time with the top-ups at each sync (Secrets.topUp), so two checks never both upload.
  const replenish = async () => (await secretsFor(keys.seed)).topUp(keys.seed, url, (path, options) => call(url, path, { ...options, token: ctx.token }), now);
  if (!isMoved) keepKeysFresh(ctx).catch(() => {});
  if (!isMoved) replenish().catch(() => {});
  let open;
  let stop = () => {};
  let viewing = null;
  const conversation = (c) => {
    stop();
    viewing = c.id;
    redraw = () => conversation(c);
    c.unread = 0;
    talk.changed(c);
    stop = conversationScreen(main, talk, c);
  };
  const go = {
    home: () => welcome(ctx),
    browse: () =>
      browseScreen(main, ctx, { onReach: (listing) => reachScreen(main, talk, listing, { opened: conversation }), onReport: (listing) => listingReport(talk, listing) }),
    offer: () =>
      offerScreen(main, ctx, {
        onPublished: () => {
          open('browse')().then(() => {
            const said = el('p', { role: 'status', id: 'published' }, t('offer.published'));
            main.insertBefore(said, main.children[1]);
          });
        },
      }),
    talks: () => {
      const away = (screen) => () => {
        stop();
        stop = screen() ?? (() => {});
      };
      stop = talksScreen(main, talk, { open: conversation, reports: away(() => void reportsScreen(main, ctx)), blocked: away(() => blockedScreen(main, talk)) });
    },
  };
  // The section a person is in is marked for screen readers (aria-current) and by sight (style).
  open = (key) => () => {
    stop();
    viewing = null;
    redraw = () => {
      drawSections();
      open(key)();
    };
    for (const b of sections.querySelectorAll('button')) b.toggleAttribute('aria-current', b.dataset.section === key);
    for (const b of sections.querySelectorAll('[aria-current]')) b.setAttribute('aria-current', 'page');
    return go[key]();
  };
  const button = (key, words) => el('button', { type: 'button', class: 'quiet', 'data-section': key, onclick: open(key) }, words);
  const talksButton = button('talks', t('nav.talks'));
  // The unread count lives in the Talks button's own name, so a screen reader hears it there.
  const drawTalks = () => {
    const n = talk.unread;
    show(talksButton, t('nav.talks'), n ? el('span', { class: 'badge' }, ` ${t('nav.unread', { count: n })}`) : null);
  };
  talk.watch(drawTalks);
  const drawSections = () => {
    drawTalks();
    show(sections, button('home', t('nav.home')), button('browse', t('nav.browse')), button('offer', t('nav.offer')), talksButton);
  };
  drawSections();
  sections.hidden = false;
  open('home')();
  restored = talk.restore();
  restored.then(() => {
    talk.changed(null);
    watchArrivals(talk);
    if (!isMoved) talk.listen(() => viewing, { status: notice.connection, renew: freshToken });
  });
}

function joinScreen(doc, url) {
  redraw = () => joinScreen(doc, url);
  const name = field('name', t('join.name'), {
    hint: t('join.name_hint'),
    autocomplete: 'nickname',
  });
  const pass = field('passphrase', t('join.passphrase'), {
    type: 'password',
    hint: t('join.passphrase_hint'),
    autocomplete: 'new-password',
  });
  // An invite link (/#invite=CODE) fills the code in; it is taken from the address bar at once.
  const code = inviteFrom(location.hash);
  if (code) history.replaceState(null, '', location.pathname);
  const invite = doc.registration === 'invite' || code ? field('invite', t('join.invite'), { autocomplete: 'off', value: code ?? undefined }) : null;
  const outcome = el('div', { 'aria-live': 'polite' });
  const form = el(
    'form',
    { id: 'join', novalidate: true },
    name.nodes,
    pass.nodes,
    invite ? invite.nodes : null,
    el('p', {}, el('button', { type: 'submit' }, t('join.submit'))),
    outcome,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    busy(form, true);
    show(outcome, el('p', { role: 'status' }, t('join.working')));
    const keys = newKeys(now());
    const chosen = name.input.value.trim();
    let session;
    try {
      session = await join(url, keys, { name: chosen, invite: invite ? invite.input.value.trim() : undefined, device: await deviceId(), prekeyFor: prekeyFor(keys.seed, now, { fresh: true }) });
      await saveDevice(keys, pass.input.value, { node: url, name: chosen });
      await (await secretsFor(keys.seed)).keep();
    } catch (error) {
      // Waiting for approval: keep the keys, since a new key would be a new request (spec §13.4).
      if (error.code === 'auth.pending') {
        await saveDevice(keys, pass.input.value, { node: url, name: chosen });
        await (await secretsFor(keys.seed)).keep();
      }
      busy(form, false);
      refused(outcome, problem(error));
      return;
    }
    signedIn(doc, url, keys, session, chosen, { passphrase: pass.input.value });
  });
  show(
    main,
    el('h1', { tabindex: '-1', id: 'screen-title' }, ...tn('join.title', { node: theirs(doc.name) })),
    el('p', {}, theirs(doc.description)),
    el('p', {}, t('join.intro')),
    form,
    code ? invitePanel(location.origin, code) : null,
    el('p', {}, el('button', { type: 'button', class: 'quiet', id: 'from-backup', onclick: () => importScreen(main, url, { done: (keys, session, chosen, passphrase) => signedIn(doc, url, keys, session, chosen, { passphrase, fromBackup: true }), back: () => joinScreen(doc, url) }) }, t('device.import.start'))),
  );
}

function unlockScreen(doc, url, record) {
  redraw = () => unlockScreen(doc, url, record);
  const pass = field('passphrase', t('unlock.passphrase'), { type: 'password', autocomplete: 'current-password' });
  const outcome = el('div', { 'aria-live': 'polite' });
  const form = el('form', { id: 'unlock', novalidate: true }, pass.nodes, el('p', {}, el('button', { type: 'submit' }, t('unlock.submit'))), outcome);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    busy(form, true);
    show(outcome, el('p', { role: 'status' }, t('unlock.working')));
    try {
      const keys = await unlockDevice(record, pass.input.value);
      await comeBack(doc, url, keys, record.name, pass.input.value, record.fromBackup);
    } catch (error) {
      busy(form, false);
      refused(outcome, problem(error));
    }
  });
  show(main, el('h1', { tabindex: '-1', id: 'screen-title' }, t('unlock.title')), el('p', {}, t('unlock.intro')), form);
}

// Sign in again with the keys on this device; when another device holds the identity now, show
// what this one holds, and say so (spec §13.4). Throws NodeError, ProtocolError.
async function comeBack(doc, url, keys, name, passphrase = null, fromBackup = false) {
  let session;
  try {
    session = await join(url, keys, { name, device: await deviceId(), prekeyFor: prekeyFor(keys.seed, now) });
  } catch (error) {
    if (error.code !== 'auth.moved') throw error;
    signedIn(doc, url, keys, { token: null, bundle: null }, name, { movedAt: error.movedAt, passphrase, fromBackup });
    return;
  }
  signedIn(doc, url, keys, session, name, { passphrase, fromBackup });
}

async function start() {
  const url = nodeUrl(location.origin);
  let doc;
  try {
    doc = await nodeDocument(url);
  } catch (error) {
    show(main, el('h1', {}, t('app.unreachable')), problem(error));
    return;
  }
  known = doc;
  frame();
  resources.hidden = false;
  const record = await loadDevice().catch(() => null);
  if (record && record.node === url && needsPassphrase(record)) unlockScreen(doc, url, record);
  else if (record && record.node === url) {
    const keys = await unlockDevice(record, null);
    await comeBack(doc, url, keys, record.name, null, record.fromBackup).catch((error) => show(main, problem(error)));
  } else joinScreen(doc, url);
}

start();
