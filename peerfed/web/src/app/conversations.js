// Talks (spec §8, §9): reach out with a hello, answer a reach-out, and talk. Every string a peer
// wrote is shown as text with invisible characters made visible (ui.js); nothing here rates anyone.

import { peerIdText } from '../protocol/index.js';
import { busy, field, problem } from './forms.js';
import { el, show, theirs } from './ui.js';

function who(conversation) {
  return conversation.other.name ? theirs(conversation.other.name) : 'Someone';
}

function stateWords(c) {
  const s = c.state.state;
  if (s === 'reached-out') return c.mine ? 'Waiting for them to answer.' : 'They are waiting for your answer. There is no rush.';
  if (s === 'accepted' || s === 'agreed') return 'You are talking.';
  if (s === 'declined') return c.mine ? 'They could not take this on. That is not about you.' : 'You said no this time.';
  const ended = c.state.endedBy === (c.mine ? 'reacher' : 'author') ? 'You ended this conversation.' : 'They ended this conversation. That is their choice, and it is final.';
  return c.erased ? `${ended} Its words were deleted from this device.` : ended;
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
}

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * The display order of spec §9.5: each side's messages in seq order, the two runs merged by the
 * earlier created_at, a tie going to the side whose peer id is bytewise smaller.
 */
export function displayOrder(messages, me, them) {
  const runs = [true, false].map((mine) => messages.filter((m) => m.mine === mine).sort((a, b) => a.seq - b.seq));
  const smallerIsMine = compareBytes(me, them) < 0;
  const out = [];
  let [i, j] = [0, 0];
  while (i < runs[0].length || j < runs[1].length) {
    const a = runs[0][i];
    const b = runs[1][j];
    const takeMine = !b || (a && (a.createdAt < b.createdAt || (a.createdAt === b.createdAt && smallerIsMine)));
    out.push(takeMine ? a : b);
    if (takeMine) i++;
    else j++;
  }
  return out;
}

/** The list of talks; `open(conversation)` shows one. */
export function talksScreen(main, talk, { open }) {
  const list = el('ul', { class: 'listings', id: 'talks' });
  const fill = () => {
    const all = [...talk.conversations.values()];
    show(
      list,
      all.length
        ? all.map((c) =>
            el(
              'li',
              { class: 'listing talk' },
              el('h2', {}, c.mine ? 'You reached out to ' : 'Reach-out from ', who(c)),
              el('p', { class: 'note' }, stateWords(c)),
              c.unread ? el('p', { class: 'unread' }, c.unread === 1 ? '1 new' : `${c.unread} new`) : null,
              el('p', {}, el('button', { type: 'button', class: 'quiet', onclick: () => open(c) }, 'Open')),
            ),
          )
        : el('li', {}, 'No talks yet. Browse to find someone, or offer or ask for support so others can find you.'),
    );
  };
  fill();
  show(main, el('h1', { tabindex: '-1', id: 'screen-title' }, 'Talks'), list);
  document.getElementById('screen-title').focus();
  return talk.watch(fill);
}

function answerForm(talk, c, outcome) {
  const reply = field('reply', 'A few words back (optional)', { tag: 'textarea', autocomplete: 'off' }); // off: no copy in the browser's session files (§12)
  const form = el('form', { id: 'answer', novalidate: true }, reply.nodes);
  const act = (accept) => async () => {
    busy(form, true);
    try {
      await talk.respond(c, accept, reply.input.value.trim());
    } catch (error) {
      busy(form, false);
      show(outcome, problem(error));
    }
  };
  form.append(
    el('p', { class: 'actions' },
      el('button', { type: 'button', onclick: act(true) }, 'Accept'), ' ',
      el('button', { type: 'button', class: 'quiet', onclick: act(false) }, 'Not this time')),
  );
  form.addEventListener('submit', (event) => event.preventDefault());
  return form;
}

function composeForm(talk, c, outcome) {
  const text = field('message', 'Your message', { tag: 'textarea', autocomplete: 'off' }); // off: no copy in the browser's session files (§12)
  const form = el('form', { id: 'compose', novalidate: true }, text.nodes, el('p', {}, el('button', { type: 'submit' }, 'Send')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const words = text.input.value.trim();
    if (!words) return;
    busy(form, true);
    try {
      await talk.send(c, words);
      text.input.value = '';
      show(outcome);
    } catch (error) {
      show(outcome, problem(error));
    } finally {
      busy(form, false);
      text.input.focus();
    }
  });
  return form;
}

// Ending and blocking: always there, said plainly, never asking for a reason.
function leaving(talk, c, outcome) {
  const act = (work) => async (event) => {
    event.target.disabled = true;
    try {
      await work();
    } catch (error) {
      event.target.disabled = false;
      show(outcome, problem(error));
    }
  };
  const parts = [el('h2', { id: 'leave-title' }, 'If you want to stop')];
  if (c.state.live) {
    parts.push(
      el('p', { class: 'hint' }, 'Either of you can end a conversation at any time, without a reason. Ending is final. Deleting also asks their device to delete its copy; no one can force that.'),
      el('p', { class: 'actions' },
        el('button', { type: 'button', class: 'quiet', onclick: act(() => talk.end(c, false)) }, 'End conversation'), ' ',
        el('button', { type: 'button', class: 'quiet', onclick: act(() => talk.end(c, true)) }, 'End and delete our words')),
    );
  }
  parts.push(
    c.blocked
      ? el('p', { role: 'status' }, 'Blocked. Nothing more from them reaches you on this device.')
      : el('p', {}, el('button', { type: 'button', class: 'quiet', onclick: act(async () => talk.block(c)) }, 'Block ', who(c))),
  );
  return parts;
}

/** One conversation, kept up to date as mail arrives; returns a function that stops watching. */
export function conversationScreen(main, talk, c) {
  const log = el('ol', { class: 'messages', id: 'messages', 'aria-live': 'polite' });
  const status = el('p', { class: 'note', id: 'talk-state' });
  const outcome = el('div', { 'aria-live': 'polite' });
  const actions = el('div', {});
  const leave = el('section', { class: 'leave', 'aria-labelledby': 'leave-title' });
  let shown = null;
  const fill = () => {
    c.unread = 0;
    show(status, stateWords(c));
    const order = displayOrder(c.messages, talk.me, c.peer);
    show(
      log,
      c.hello === null ? null : el('li', { class: 'hello' }, el('p', { class: 'by' }, c.mine ? 'You wrote first' : 'They wrote first'), el('p', { class: 'text' }, theirs(c.hello))),
      c.reply ? el('li', { class: 'hello' }, el('p', { class: 'by' }, c.mine ? 'Their answer' : 'Your answer'), el('p', { class: 'text' }, theirs(c.reply))) : null,
      order.map((m) =>
        el('li', { class: m.mine ? 'message mine' : 'message' },
          el('p', { class: 'by' }, m.mine ? 'You' : who(c), ' · ', when(m.createdAt)),
          el('p', { class: 'text' }, theirs(m.text))),
      ),
    );
    const phase = c.state.state === 'reached-out' && !c.mine ? 'answer' : c.state.live && c.state.state !== 'reached-out' ? 'talk' : 'none';
    if (phase !== shown) {
      shown = phase;
      show(actions, phase === 'answer' ? answerForm(talk, c, outcome) : phase === 'talk' ? composeForm(talk, c, outcome) : null);
    }
    show(leave, leaving(talk, c, outcome));
  };
  fill();
  show(
    main,
    el('h1', { tabindex: '-1', id: 'screen-title' }, 'Talking with ', who(c)),
    el('p', { class: 'peer-id' }, peerIdText(c.peer)),
    status,
    log,
    actions,
    outcome,
    leave,
  );
  document.getElementById('screen-title').focus();
  return talk.watch((changed) => {
    if (changed === c) fill();
  });
}

/** Reach out about `listing` with a first hello; `opened(conversation)` follows once it is sent. */
export function reachScreen(main, talk, listing, { opened }) {
  const hello = field('hello', 'A first hello', {
    tag: 'textarea',
    autocomplete: 'off', // no copy in the browser's session files on disk (§12)
    hint: 'Say a little about why you are reaching out. They choose whether to answer; until then you cannot send more.',
  });
  const outcome = el('div', { 'aria-live': 'polite' });
  const form = el('form', { id: 'reach', novalidate: true }, hello.nodes, el('p', {}, el('button', { type: 'submit' }, 'Send hello')), outcome);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const words = hello.input.value.trim();
    if (!words) {
      show(outcome, el('p', { class: 'error', role: 'alert' }, 'Please write a few words first.'));
      return;
    }
    busy(form, true);
    show(outcome, el('p', { role: 'status' }, 'Sealing and sending. The first time, this device does a short check the community asks for…'));
    try {
      opened(await talk.reachOut(listing, words));
    } catch (error) {
      busy(form, false);
      show(outcome, problem(error));
    }
  });
  show(
    main,
    el('h1', { tabindex: '-1', id: 'screen-title' }, 'Reach out'),
    el('p', {}, 'About: ', theirs(listing.topics.join(' · '))),
    el('p', { class: 'summary' }, theirs(listing.summary)),
    form,
  );
  document.getElementById('screen-title').focus();
}
