// Browse the community's directory (spec §13.5): filter by topic words, language, way to talk and
// kind; each result verified in this page (listings.js) and shown as text, never as HTML. Results
// come newest first, as the node sends them; nothing here ranks or rates anyone.

import { peerIdText } from '../protocol/index.js';
import { busy, field, problem } from './forms.js';
import { t, tn } from './i18n.js';
import { searchDirectory, withdrawListing } from './listings.js';
import { dayNames, FORMAT_WORDS, TIMING_WORDS } from './offer.js';
import { el, show, theirs } from './ui.js';

const KIND_WORDS = { offer: () => t('browse.offer'), request: () => t('browse.request') };

function clock(minutes) {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

function when(window) {
  const days = dayNames('short').filter((_, i) => window.days & (1 << i));
  return `${days.join(', ')} ${clock(window.start)}–${clock(window.end)}`;
}

// The person's own listing: taken down everywhere with one press, said plainly before and after.
function takeDown(ctx, listing) {
  const said = el('p', { role: 'status' });
  const hint = el('p', { class: 'hint' }, t('browse.withdraw_hint'));
  const button = el('button', { type: 'button', class: 'quiet' }, t('browse.withdraw'));
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await withdrawListing(ctx.url, ctx.token, ctx.keys.seed, listing, { now: ctx.now() });
      button.remove();
      hint.remove();
      show(said, t('browse.withdrawn'));
    } catch (error) {
      button.disabled = false;
      show(said, problem(error));
    }
  });
  return el('div', { class: 'withdraw' }, hint, el('p', {}, button), said);
}

function result(ctx, listing, own, onReach, onReport) {
  const FORMAT = Object.fromEntries(FORMAT_WORDS());
  const TIMING = Object.fromEntries(TIMING_WORDS());
  return el(
    'li',
    { class: 'listing' },
    el('h3', {}, KIND_WORDS[listing.kind](), own ? t('browse.yours') : ''),
    el('p', { class: 'topics' }, theirs(listing.topics.join(' · '))),
    el('p', { class: 'summary' }, theirs(listing.summary)),
    el('p', { class: 'note' }, ...tn('browse.languages', { languages: theirs(listing.languages.join(', ')) })),
    el('p', { class: 'note' }, t('browse.formats', { formats: listing.formats.map((f) => FORMAT[f]).join(', ') })),
    listing.availability.length
      ? el('p', { class: 'note' }, ...tn('browse.free', { when: theirs(listing.availability.map(when).join('; ')), tz: theirs(listing.tz) }))
      : null,
    el('p', { class: 'note' }, t('browse.timing', { timing: TIMING[listing.timing] })),
    !own && onReach ? el('p', {}, el('button', { type: 'button', class: 'quiet', onclick: () => onReach(listing) }, t('browse.reach'))) : null,
    !own && onReport ? onReport(listing) : null,
    own ? takeDown(ctx, listing) : null,
  );
}

/** The browse screen inside `main`; `ctx` is the signed-in { url, keys, token, now, peer }; `onReach(listing)` reaches out. */
export function browseScreen(main, ctx, { onReach, onReport } = {}) {
  const topic = field('filter-topic', t('browse.topic'), { autocomplete: 'off', hint: t('browse.topic_hint') });
  const lang = field('filter-lang', t('browse.lang'), { hint: t('browse.lang_hint') });
  const format = field('filter-format', t('browse.format'), { tag: 'select', options: [['', t('browse.any')], ...FORMAT_WORDS()] });
  const kind = field('filter-kind', t('browse.kind'), {
    tag: 'select',
    options: [['', t('browse.kind_all')], ['offer', t('browse.kind_offer')], ['request', t('browse.kind_request')]],
  });
  const found = el('div', { id: 'results', 'aria-live': 'polite' });
  const form = el(
    'form',
    { id: 'browse', role: 'search', novalidate: true },
    topic.nodes,
    lang.nodes,
    format.nodes,
    kind.nodes,
    el('p', {}, el('button', { type: 'submit' }, t('browse.show'))),
  );
  async function search() {
    busy(form, true);
    show(found, el('p', { role: 'status' }, t('browse.looking')));
    try {
      const filters = { topic: topic.input.value.trim(), lang: lang.input.value.trim(), format: format.input.value, kind: kind.input.value };
      const { listings } = await searchDirectory(ctx.url, ctx.token, filters, { now: ctx.now() });
      show(
        found,
        el('h2', { id: 'results-count' }, listings.length === 1 ? t('browse.count_one') : t('browse.count', { count: listings.length })),
        listings.length
          ? el('ul', { class: 'listings' }, listings.map((l) => result(ctx, l, peerIdText(l.author) === ctx.peer, onReach, onReport)))
          : el('p', {}, t('browse.none')),
      );
    } catch (error) {
      show(found, problem(error));
    } finally {
      busy(form, false);
    }
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    search();
  });
  show(main, el('h1', { tabindex: '-1', id: 'screen-title' }, t('browse.title')), form, found);
  document.getElementById('screen-title').focus();
  return search();
}
