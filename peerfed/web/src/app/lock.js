// Locking and erasing (spec §12, §13.6): locking forgets the unlocked keys from this page's memory
// and goes back to the passphrase screen, at a press or after a chosen idle time; erasing asks
// first, then has the node and its federation delete everything they hold for this key, and then
// deletes everything this browser keeps. Every word goes through t().

import { sign } from '../protocol/index.js';
import { busy, field, problem } from './forms.js';
import { t } from './i18n.js';
import { wipeDevice } from './keystore.js';
import { call } from './node.js';
import { el, show } from './ui.js';

const IDLE_CHOICE = 'peerfed.lock-after';
const ERASURE_LIFETIME = 90 * 86_400; // as the CLI's
/** The idle times a person may choose, in minutes (0: never). */
export const IDLE_MINUTES = [0, 5, 15, 60];
const ACTIVITY = ['pointerdown', 'keydown', 'wheel', 'touchstart'];

function stored() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage refused: the choice lasts as long as the page
  }
}

/** The chosen idle time in minutes (0: never lock by itself). */
export function idleMinutes() {
  const chosen = Number(stored()?.getItem(IDLE_CHOICE) ?? 0);
  return IDLE_MINUTES.includes(chosen) ? chosen : 0;
}

/**
 * Call `lock()` after the chosen idle time without a key press, tap or scroll; returns
 * `{ restart(), stop() }` (restart after the choice changes).
 */
export function idleLock(lock) {
  let timer = null;
  const arm = () => {
    clearTimeout(timer);
    const minutes = idleMinutes();
    if (minutes > 0) timer = setTimeout(lock, minutes * 60_000);
  };
  for (const kind of ACTIVITY) document.addEventListener(kind, arm, { passive: true });
  arm();
  return {
    restart: arm,
    stop() {
      clearTimeout(timer);
      for (const kind of ACTIVITY) document.removeEventListener(kind, arm);
    },
  };
}

/** The home screen's part about locking: a button, and the idle time to lock after. */
export function lockPanel({ lock, idle }) {
  const choice = field('lock-after', t('device.lock.after'), {
    tag: 'select',
    hint: t('device.lock.after_hint'),
    options: IDLE_MINUTES.map((m) => [String(m), m === 0 ? t('device.lock.never') : t('device.lock.minutes', { minutes: m })]),
    value: String(idleMinutes()),
  });
  choice.input.addEventListener('change', () => {
    stored()?.setItem(IDLE_CHOICE, choice.input.value);
    idle.restart();
  });
  return el(
    'section',
    { class: 'device', 'aria-labelledby': 'lock-title' },
    el('h2', { id: 'lock-title' }, t('device.lock.title')),
    el('p', { class: 'hint' }, t('device.lock.about')),
    el('p', {}, el('button', { type: 'button', id: 'lock-now', onclick: lock }, t('device.lock.now'))),
    choice.nodes,
  );
}

/**
 * The home screen's part about erasing. Asks first, plainly; on yes, the node erases (POST /erase
 * with a signed erasure, spec §13.6), then this browser's database is deleted and `erased()` follows.
 */
export function erasePanel(ctx, { erased }) {
  const outcome = el('div', { 'aria-live': 'polite' });
  const confirm = el('div', { id: 'erase-confirm', hidden: true });
  const start = el('button', { type: 'button', class: 'quiet', id: 'erase-start' }, t('device.erase.start'));
  const yes = el('button', { type: 'button' }, t('device.erase.yes'));
  const no = el('button', { type: 'button', class: 'quiet' }, t('device.erase.no'));
  start.addEventListener('click', () => {
    confirm.hidden = false;
    start.hidden = true;
    no.focus();
  });
  no.addEventListener('click', () => {
    confirm.hidden = true;
    start.hidden = false;
    start.focus();
  });
  yes.addEventListener('click', async () => {
    busy(confirm, true);
    show(outcome, el('p', { role: 'status' }, t('device.erase.working')));
    try {
      const at = ctx.now();
      const erasure = sign(ctx.keys.seed, 'erasure', [], { createdAt: at, expiresAt: at + ERASURE_LIFETIME });
      const answer = await call(ctx.url, '/api/v1/erase', {
        method: 'POST',
        body: erasure.raw,
        headers: { 'Content-Type': 'application/octet-stream' },
        token: ctx.token,
      });
      await wipeDevice();
      erased(answer);
    } catch (error) {
      busy(confirm, false);
      show(outcome, problem(error));
    }
  });
  confirm.append(
    el('p', { role: 'alert' }, t('device.erase.ask')),
    el('p', { class: 'actions' }, yes, ' ', no),
  );
  return el(
    'section',
    { class: 'device', 'aria-labelledby': 'erase-title' },
    el('h2', { id: 'erase-title' }, t('device.erase.title')),
    el('p', { class: 'hint' }, t('device.erase.about')),
    el('p', {}, start),
    confirm,
    outcome,
  );
}

/** What follows an erasure: said plainly, with the way to start again. */
export function erasedScreen(main, answer, { again }) {
  show(
    main,
    el('h1', { tabindex: '-1', id: 'screen-title' }, t('device.erase.done_title')),
    el('p', { id: 'erased' }, t('device.erase.done', { listings: Number(answer.listings) || 0 })),
    el('p', {}, el('button', { type: 'button', class: 'quiet', onclick: again }, t('device.erase.again'))),
  );
  document.getElementById('screen-title').focus();
}
