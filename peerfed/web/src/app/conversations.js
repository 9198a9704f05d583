// Talks (spec §8, §9): reach out with a hello, answer a reach-out, and talk. Every string a peer
// wrote is shown as text with invisible characters made visible (ui.js); nothing here rates anyone.

import { peerIdText } from '../protocol/index.js';
import { busy, field, problem, refused } from './forms.js';
import { language, t, tn } from './i18n.js';
import { reportBox } from './reports_view.js';
import { notifyControl } from './notify.js';
import { PENDING_PER_SENDER_CAP, PENDING_REACH_OUTS_CAP } from './talk.js';
import { keepForgetting } from './talk_state.js';
import { termsKey, termsSection } from './terms_view.js';
import { el, show, theirs } from './ui.js';

function who(conversation) {
  return conversation.other.name ? theirs(conversation.other.name) : t('talk.someone');
}

function stateWords(c) {
  const s = c.state.state;
  if (s === 'reached-out') return c.mine ? t('talk.waiting_them') : t('talk.waiting_you');
  if (s === 'accepted' || s === 'agreed') return t('talk.talking');
  if (s === 'declined') return c.mine ? t('talk.declined_mine') : t('talk.declined_theirs');
  const ended = c.state.endedBy === (c.mine ? 'reacher' : 'author') ? t('talk.ended_by_me') : t('talk.ended_by_them');
  return c.erased ? `${ended} ${t('talk.erased')}` : ended;
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString(language(), { dateStyle: 'short', timeStyle: 'short' });
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
export function talksScreen(main, talk, { open, reports, blocked }) {
  talk.forgetDue(); // on every screen of conversations, as the CLI on every command (spec §9.7)
  const list = el('ul', { class: 'listings', id: 'talks' });
  const waiting = el('p', { class: 'hint', id: 'pending-bound' });
  const fill = () => {
    const n = talk.pending().length;
    waiting.hidden = n === 0;
    waiting.textContent = n ? t('talks.pending', { count: n, cap: PENDING_REACH_OUTS_CAP, per: PENDING_PER_SENDER_CAP }) : '';
    const all = [...talk.conversations.values()];
    show(
      list,
      all.length
        ? all.map((c) =>
            el(
              'li',
              { class: 'listing talk' },
              el('h3', {}, ...(c.mine ? tn('talks.mine', { name: who(c) }) : tn('talks.theirs', { name: who(c) }))),
              el('p', { class: 'note' }, stateWords(c)),
              c.unread ? el('p', { class: 'unread' }, c.unread === 1 ? t('talks.unread_one') : t('talks.unread', { count: c.unread })) : null,
              el('p', {}, el('button', { type: 'button', class: 'quiet', onclick: () => open(c) }, t('talks.open'))),
            ),
          )
        : el('li', {}, t('talks.none')),
    );
  };
  fill();
  const more = el('p', { class: 'actions' },
    reports ? el('button', { type: 'button', class: 'quiet', id: 'open-reports', onclick: reports }, t('reports.open_button')) : null, ' ',
    blocked ? el('button', { type: 'button', class: 'quiet', id: 'open-blocked', onclick: blocked }, t('blocked.open_button')) : null);
  show(main, el('h1', { tabindex: '-1', id: 'screen-title' }, t('talks.title')), waiting, el('h2', { id: 'talks-list' }, t('talks.list')), list, more, notifyControl(el));
  document.getElementById('screen-title').focus();
  return watchAndForget(talk, fill);
}

// Redraw with `fill` on every change, and forget what comes due while the screen is open (§9.7);
// the returned function stops both (leaving the screen, locking).
function watchAndForget(talk, fill) {
  const unwatch = talk.watch(fill);
  const stopForgetting = keepForgetting(talk);
  return () => {
    unwatch();
    stopForgetting();
  };
}

function answerForm(talk, c, outcome) {
  const reply = field('reply', t('talk.reply'), { tag: 'textarea', autocomplete: 'off' }); // off: no copy in the browser's session files (§12)
  const form = el('form', { id: 'answer', novalidate: true }, reply.nodes);
  const act = (accept) => async () => {
    busy(form, true);
    try {
      await talk.respond(c, accept, reply.input.value.trim());
    } catch (error) {
      busy(form, false);
      refused(outcome, problem(error));
    }
  };
  form.append(
    el('p', { class: 'hint', id: 'decline-hint' }, t('answer.decline.hint')),
    el('p', { class: 'actions' },
      el('button', { type: 'button', onclick: act(true) }, t('talk.accept')), ' ',
      el('button', { type: 'button', class: 'quiet', onclick: act(false) }, t('talk.decline'))),
  );
  form.addEventListener('submit', (event) => event.preventDefault());
  return form;
}

function composeForm(talk, c, outcome) {
  const text = field('message', t('talk.message'), { tag: 'textarea', autocomplete: 'off' }); // off: no copy in the browser's session files (§12)
  const form = el('form', { id: 'compose', novalidate: true }, text.nodes, el('p', {}, el('button', { type: 'submit' }, t('talk.send'))));
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
      refused(outcome, problem(error));
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
      refused(outcome, problem(error));
    }
  };
  const parts = [el('h2', { id: 'leave-title' }, t('talk.leave_title'))];
  if (c.state.live) {
    parts.push(
      el('p', { class: 'hint' }, t('talk.leave_hint')),
      el('p', { class: 'actions' },
        el('button', { type: 'button', class: 'quiet', onclick: act(() => talk.end(c, false)) }, t('talk.end')), ' ',
        el('button', { type: 'button', class: 'quiet', onclick: act(() => talk.end(c, true)) }, t('talk.end_erase'))),
    );
  }
  parts.push(
    c.blocked
      ? el('p', { role: 'status', tabindex: '-1' }, t('talk.blocked'))
      : el('p', {}, el('button', { type: 'button', class: 'quiet', onclick: act(async () => talk.block(c)) }, ...tn('talk.block', { name: who(c) }))),
  );
  return parts;
}

// The log only grows while a conversation goes on: append what is new, so a screen reader's live
// region announces the new message alone, not the whole conversation again.
function keepAdding(log, items) {
  const have = [...log.children].map((li) => li.dataset.key);
  const want = items.filter(Boolean);
  const grows = have.length <= want.length && have.every((key, i) => key === want[i].dataset.key);
  if (grows) log.append(...want.slice(have.length));
  else show(log, want);
}

/** One conversation, kept up to date as mail arrives; returns a function that stops watching. */
export function conversationScreen(main, talk, c) {
  talk.forgetDue(); // what the terms in force say is to be forgotten by now is not shown (spec §9.7)
  const log = el('ol', { class: 'messages', id: 'messages', 'aria-live': 'polite', 'aria-label': t('talk.messages') });
  const status = el('p', { class: 'note', id: 'talk-state', role: 'status', tabindex: '-1' });
  const outcome = el('div', { 'aria-live': 'polite' });
  const actions = el('div', {});
  const leave = el('section', { class: 'leave', 'aria-labelledby': 'leave-title' });
  const agreed = el('section', { class: 'agreed', id: 'terms', 'aria-labelledby': 'terms-title' });
  let shown = null;
  let termsShown = null;
  let leaveShown = null;
  const fill = () => {
    c.unread = 0;
    // (Chromium moves the focus to <body> when the focused button is disabled while it works.)
    const focused = document.activeElement === document.body || [actions, leave].some((part) => part.contains(document.activeElement));
    if (status.textContent !== stateWords(c)) show(status, stateWords(c));
    const order = displayOrder(c.messages, talk.me, c.peer);
    keepAdding(
      log,
      [c.hello === null ? null : el('li', { class: 'hello', 'data-key': 'hello' }, el('p', { class: 'by' }, c.mine ? t('talk.hello_mine') : t('talk.hello_theirs')), el('p', { class: 'text' }, theirs(c.hello))),
      c.reply ? el('li', { class: 'hello', 'data-key': 'reply' }, el('p', { class: 'by' }, c.mine ? t('talk.reply_theirs') : t('talk.reply_mine')), el('p', { class: 'text' }, theirs(c.reply))) : null,
      ...order.map((m) =>
        el('li', { class: m.mine ? 'message mine' : 'message', 'data-key': `${m.mine ? 'mine' : 'theirs'}-${m.seq}` },
          el('p', { class: 'by' }, m.mine ? t('talk.you') : who(c), ' · ', when(m.createdAt)),
          el('p', { class: 'text' }, theirs(m.text))),
      )],
    );
    const phase = c.state.state === 'reached-out' && !c.mine ? 'answer' : c.state.live && c.state.state !== 'reached-out' ? 'talk' : 'none';
    if (phase !== shown) {
      shown = phase;
      show(actions, phase === 'answer' ? answerForm(talk, c, outcome) : phase === 'talk' ? composeForm(talk, c, outcome) : null);
    }
    // Terms once accepted (spec §9.3); drawn again only when they change, so typing is not lost.
    const key = c.state.state === 'accepted' || c.state.state === 'agreed' || c.state.inForce ? termsKey(talk, c) : null;
    if (key !== termsShown) {
      termsShown = key;
      show(agreed, key === null ? null : termsSection(talk, c, outcome));
      agreed.hidden = key === null;
    }
    // Redrawn only when it changes, so a new message never takes the focus from its buttons.
    if (leaveShown !== `${c.state.live}|${c.blocked}`) {
      leaveShown = `${c.state.live}|${c.blocked}`;
      show(leave, leaving(talk, c, outcome));
    }
    // What had the focus went away (answered, ended, blocked): it moves to what says what happened.
    if (focused && !main.contains(document.activeElement)) {
      (document.getElementById('message') ?? (c.blocked ? leave.querySelector('[role=status]') : status)).focus();
    }
  };
  fill();
  show(
    main,
    el('h1', { tabindex: '-1', id: 'screen-title' }, ...tn('talk.title', { name: who(c) })),
    el('p', { class: 'peer-id' }, peerIdText(c.peer)),
    status,
    log,
    actions,
    agreed,
    outcome,
    leave,
    reportBox(talk.ctx, talk.me, { peer: c.peer }, tn('report.open', { name: who(c) }), () => ({ conversation: c, name: who(c) })),
  );
  document.getElementById('screen-title').focus();
  return watchAndForget(talk, (changed) => {
    if (changed === c) fill();
  });
}

/** Reach out about `listing` with a first hello; `opened(conversation)` follows once it is sent. */
export function reachScreen(main, talk, listing, { opened }) {
  const hello = field('hello', t('reach.hello'), {
    tag: 'textarea',
    autocomplete: 'off', // no copy in the browser's session files on disk (§12)
    hint: t('reach.hello_hint'),
  });
  const outcome = el('div', { 'aria-live': 'polite' });
  const form = el('form', { id: 'reach', novalidate: true }, hello.nodes, el('p', {}, el('button', { type: 'submit' }, t('reach.send'))), outcome);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const words = hello.input.value.trim();
    if (!words) {
      refused(outcome, el('p', { class: 'error', role: 'alert', tabindex: '-1' }, t('reach.empty')));
      return;
    }
    busy(form, true);
    show(outcome, el('p', { role: 'status' }, t('reach.working')));
    try {
      opened(await talk.reachOut(listing, words));
    } catch (error) {
      busy(form, false);
      refused(outcome, problem(error));
    }
  });
  show(
    main,
    el('h1', { tabindex: '-1', id: 'screen-title' }, t('reach.title')),
    el('p', {}, ...tn('reach.about', { topics: theirs(listing.topics.join(' · ')) })),
    el('p', { class: 'summary' }, theirs(listing.summary)),
    form,
  );
  document.getElementById('screen-title').focus();
}
