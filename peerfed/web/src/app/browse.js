// Browse the community's directory (spec §13.5): filter by topic words, language, way to talk and
// kind; each result verified in this page (listings.js) and shown as text, never as HTML. Results
// come newest first, as the node sends them; nothing here ranks or rates anyone.

import { peerIdText } from '../protocol/index.js';
import { busy, field, problem } from './forms.js';
import { DAYS, searchDirectory } from './listings.js';
import { FORMAT_WORDS, TIMING_WORDS } from './offer.js';
import { el, show, theirs } from './ui.js';

const KIND_WORDS = { offer: 'Offers support', request: 'Looking for support' };
const FORMAT = Object.fromEntries(FORMAT_WORDS);
const TIMING = Object.fromEntries(TIMING_WORDS);

function clock(minutes) {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

function when(window) {
  const days = DAYS.filter((_, i) => window.days & (1 << i)).map((d) => d.slice(0, 3));
  return `${days.join(', ')} ${clock(window.start)}–${clock(window.end)}`;
}

function result(listing, own, onReach, onReport) {
  return el(
    'li',
    { class: 'listing' },
    el('h3', {}, KIND_WORDS[listing.kind], own ? ' (yours)' : ''),
    el('p', { class: 'topics' }, theirs(listing.topics.join(' · '))),
    el('p', { class: 'summary' }, theirs(listing.summary)),
    el('p', { class: 'note' }, 'Languages: ', theirs(listing.languages.join(', '))),
    el('p', { class: 'note' }, 'Ways to talk: ', listing.formats.map((f) => FORMAT[f]).join(', ')),
    listing.availability.length
      ? el('p', { class: 'note' }, 'Usually free: ', theirs(listing.availability.map(when).join('; ')), ' (', theirs(listing.tz), ' time)')
      : null,
    el('p', { class: 'note' }, 'When: ', TIMING[listing.timing]),
    !own && onReach ? el('p', {}, el('button', { type: 'button', class: 'quiet', onclick: () => onReach(listing) }, 'Reach out')) : null,
    !own && onReport ? onReport(listing) : null,
  );
}

/** The browse screen inside `main`; `ctx` is the signed-in { url, keys, token, now, peer }; `onReach(listing)` reaches out. */
export function browseScreen(main, ctx, { onReach, onReport } = {}) {
  const topic = field('filter-topic', 'Topic words', { hint: 'Leave empty to see everything.' });
  const lang = field('filter-lang', 'Language', { hint: 'A short code such as en or es.' });
  const format = field('filter-format', 'Way to talk', { tag: 'select', options: [['', 'Any'], ...FORMAT_WORDS] });
  const kind = field('filter-kind', 'Showing', {
    tag: 'select',
    options: [['', 'Offers and requests'], ['offer', 'People offering support'], ['request', 'People looking for support']],
  });
  const found = el('div', { id: 'results', 'aria-live': 'polite' });
  const form = el(
    'form',
    { id: 'browse', role: 'search', novalidate: true },
    topic.nodes,
    lang.nodes,
    format.nodes,
    kind.nodes,
    el('p', {}, el('button', { type: 'submit' }, 'Show')),
  );
  async function search() {
    busy(form, true);
    show(found, el('p', { role: 'status' }, 'Looking…'));
    try {
      const filters = { topic: topic.input.value.trim(), lang: lang.input.value.trim(), format: format.input.value, kind: kind.input.value };
      const { listings } = await searchDirectory(ctx.url, ctx.token, filters, { now: ctx.now() });
      show(
        found,
        el('h2', { id: 'results-count' }, listings.length === 1 ? '1 listing' : `${listings.length} listings`),
        listings.length
          ? el('ul', { class: 'listings' }, listings.map((l) => result(l, peerIdText(l.author) === ctx.peer, onReach, onReport)))
          : el('p', {}, 'Nothing matches yet. Try fewer words, or offer or ask for support yourself.'),
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
  show(main, el('h1', { tabindex: '-1', id: 'screen-title' }, 'Browse'), form, found);
  document.getElementById('screen-title').focus();
  return search();
}
