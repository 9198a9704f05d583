// The web client's entry point (spec §13.10): read the node this page came from, show who it is
// and its support resources, and let a person join it or come back. All cryptography runs here,
// in the page; keys are made here and never leave it.

import { join, newKeys, peerOf } from './account.js';
import { loadDevice, needsPassphrase, saveDevice, unlockDevice } from './keystore.js';
import { nodeDocument, nodeUrl } from './node.js';
import { renderResources } from './resources.js';
import { el, show, theirs } from './ui.js';

const main = document.getElementById('main');
const resources = document.getElementById('resources');
const now = () => Math.floor(Date.now() / 1000);

// What a refusal means, in plain words; anything else shows its code so it can be looked up.
const PLAIN = {
  'auth.invite': 'This community asks for an invite code. Ask someone there for one.',
  'auth.pending': 'Thank you. The people who run this community look at each new member first. Come back later.',
  'auth.work': 'This community asked for more checking than this device can do right now.',
  'local.passphrase': 'That passphrase does not open the keys on this device. Try again.',
  'local.unreachable': 'This community’s server could not be reached. Check your connection and try again.',
  'rate.limited': 'Many people are joining right now. Please try again in a few minutes.',
};

function problem(error) {
  const words = PLAIN[error?.code] ?? 'Something went wrong.';
  return el('p', { class: 'error', role: 'alert' }, words, PLAIN[error?.code] ? '' : ` (${error?.code ?? 'unknown'})`);
}

function field(id, label, { type = 'text', hint, autocomplete } = {}) {
  const input = el('input', { id, name: id, type, autocomplete, 'aria-describedby': hint ? `${id}-hint` : null });
  return {
    input,
    nodes: [el('label', { for: id }, label), hint ? el('p', { id: `${id}-hint`, class: 'hint' }, hint) : null, input],
  };
}

function busy(form, working) {
  for (const control of form.querySelectorAll('button, input')) control.disabled = working;
}

function welcome(doc, keys, name) {
  show(
    main,
    el('h1', { tabindex: '-1', id: 'welcome' }, 'You are in'),
    el('p', {}, 'You joined ', theirs(doc.name), name ? ' as ' : '', name ? theirs(name) : '', '.'),
    el('p', {}, 'Your keys were made on this device and stay here. This is your id, which others see:'),
    el('p', { class: 'peer-id', id: 'peer-id' }, peerOf(keys)),
    el('p', { class: 'hint' }, 'Support resources are one tap away at the top of every screen.'),
  );
  document.getElementById('welcome').focus();
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
  const invite = doc.registration === 'invite' ? field('invite', 'Invite code', { autocomplete: 'off' }) : null;
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
    try {
      await join(url, keys, { name: chosen, invite: invite ? invite.input.value.trim() : undefined });
      await saveDevice(keys, pass.input.value, { node: url, name: chosen });
    } catch (error) {
      // Waiting for approval: keep the keys, since a new key would be a new request (spec §13.4).
      if (error.code === 'auth.pending') await saveDevice(keys, pass.input.value, { node: url, name: chosen });
      busy(form, false);
      show(outcome, problem(error));
      return;
    }
    welcome(doc, keys, chosen);
  });
  show(
    main,
    el('h1', {}, 'Join ', theirs(doc.name)),
    el('p', {}, theirs(doc.description)),
    el('p', {}, 'Here you can find people who have been through something similar, and talk with them as equals. No email, phone number or real name is needed.'),
    form,
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
      await join(url, keys, { name: record.name });
      welcome(doc, keys, record.name);
    } catch (error) {
      busy(form, false);
      show(outcome, problem(error));
    }
  });
  show(main, el('h1', {}, 'Welcome back'), el('p', {}, 'Your keys on this device are protected by your passphrase.'), form);
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
    await join(url, keys, { name: record.name }).then(() => welcome(doc, keys, record.name), (error) => show(main, problem(error)));
  } else joinScreen(doc, url);
}

start();
