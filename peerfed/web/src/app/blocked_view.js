// People this person blocked (spec §13.5 blocking, on this device as the CLI does): who they are,
// as far as this device knows, and a way to hear from each again. Names are peers' own text.

import { fromHex, peerIdText, toHex } from '../protocol/index.js';
import { t, tn } from './i18n.js';
import { el, show, theirs } from './ui.js';

function nameOf(talk, hex) {
  for (const c of talk.conversations.values()) if (c.other?.name && toHex(c.peer) === hex) return c.other.name;
  return null;
}

/** The list of blocked peers with an Unblock button each; returns a function that stops watching. */
export function blockedScreen(main, talk) {
  const list = el('ul', { class: 'listings', id: 'blocked' });
  const said = el('div', { 'aria-live': 'polite' });
  const fill = () => {
    const peers = [...talk.blocked];
    show(list, peers.length ? peers.map((hex) => {
      const name = nameOf(talk, hex);
      const who = name ? theirs(name) : t('blocked.someone');
      return el('li', { class: 'listing' },
        el('h3', {}, name ? theirs(name) : t('blocked.someone')),
        el('p', { class: 'peer-id' }, peerIdText(fromHex(hex))),
        el('p', {}, el('button', { type: 'button', class: 'quiet', onclick: () => {
          talk.unblock(hex);
          show(said, el('p', { role: 'status', id: 'unblocked' }, t('blocked.done')));
        } }, ...tn('blocked.unblock', { name: who }))));
    }) : el('li', {}, t('blocked.none')));
  };
  fill();
  show(main, el('h1', { tabindex: '-1', id: 'screen-title' }, t('blocked.title')), el('p', { class: 'hint' }, t('blocked.hint')), said, list);
  document.getElementById('screen-title').focus();
  return talk.watch(fill);
}
