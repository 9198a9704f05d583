// Telling a person that something arrived while the tab is open (spec §13.10): the page title
// carries the unread count, and, only after the person turned it on with a button (the browser
// asks its permission then, never on load), a notification that says only "New message": no
// name, no words of the peer, since a notification can show on a locked or shared screen.

import { t } from './i18n.js';

const CHOSEN = 'peerfed.notify';

function storage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage refused: the choice lasts as long as the page
  }
}

let chosenInPage = false;

/** The page title for `base` with `unread` items waiting: "(2) base", or `base` alone. */
export function titleFor(base, unread) {
  return unread > 0 ? `(${unread}) ${base}` : base;
}

/** 'on', 'off', 'blocked' (the browser refuses) or 'unsupported'. */
export function notifyState() {
  const N = globalThis.Notification;
  if (typeof N !== 'function') return 'unsupported';
  if (N.permission === 'denied') return 'blocked';
  const chosen = storage() ? storage().getItem(CHOSEN) === 'on' : chosenInPage;
  return chosen && N.permission === 'granted' ? 'on' : 'off';
}

/** Turn notifications on (asking the browser's permission now) or off; returns notifyState(). */
export async function chooseNotify(on) {
  const N = globalThis.Notification;
  if (typeof N !== 'function') return 'unsupported';
  if (on && N.permission !== 'granted') await N.requestPermission();
  chosenInPage = on && N.permission === 'granted';
  storage()?.setItem(CHOSEN, chosenInPage ? 'on' : 'off');
  return notifyState();
}

/**
 * Keep the title's count and notify on arrivals for `talk` from now on (call once its saved state
 * is back, so what was already unread is not announced). Only a rise in the unread count is an
 * arrival: mail for the conversation on screen is not counted (talk.js), so it is not announced.
 */
export function watchArrivals(talk, base = document.title) {
  let last = talk.unread;
  document.title = titleFor(base, last);
  return talk.watch(() => {
    const now = talk.unread;
    document.title = titleFor(base, now);
    if (now > last && notifyState() === 'on') {
      try {
        const note = new Notification(t('notify.new'), { tag: 'peerfed-new', silent: false });
        note.onclick = () => globalThis.focus?.();
      } catch {
        // some browsers only notify from a service worker: the title still shows the count
      }
    }
    last = now;
  });
}

/** The control that turns notifications on or off, with a line saying where things stand. */
export function notifyControl(el) {
  const line = el('p', { class: 'hint', id: 'notify-state', role: 'status' });
  const button = el('button', { type: 'button', class: 'quiet', id: 'notify-toggle' });
  const draw = (state) => {
    line.textContent = t(`notify.state.${state}`);
    button.textContent = state === 'on' ? t('notify.turn_off') : t('notify.turn_on');
    button.hidden = state === 'unsupported' || state === 'blocked';
  };
  button.addEventListener('click', async () => {
    button.disabled = true;
    draw(await chooseNotify(notifyState() !== 'on'));
    button.disabled = false;
  });
  draw(notifyState());
  return el('section', { class: 'notify', 'aria-labelledby': 'notify-title' }, el('h2', { id: 'notify-title' }, t('notify.title')), line, el('p', {}, button));
}
