// Offer support or ask for it (spec §6.2): topics in the person's own words, languages, ways to
// talk, and when they are usually free in their own time zone. The listing is built and signed in
// this page (listings.js) and only its public card reaches the node.

import { ProtocolError } from '../protocol/index.js';
import { choices, busy, field, problem } from './forms.js';
import { DAYS, listingBody, publishListing, words } from './listings.js';
import { el, show } from './ui.js';

export const FORMAT_WORDS = [
  ['text', 'Writing'],
  ['voice', 'Voice call'],
  ['video', 'Video call'],
  ['in-person', 'In person'],
  ['sign', 'Sign language'],
];
export const TIMING_WORDS = [
  ['now', 'Now, or today'],
  ['soon', 'In the next few days'],
  ['scheduled', 'At set times'],
];

/** This device's IANA time zone, or UTC when the browser does not say. */
export function ownTimeZone() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return typeof zone === 'string' && /^[A-Za-z0-9_+\-/]{1,64}$/.test(zone) ? zone : 'UTC';
}

function ownLanguages() {
  const tags = (navigator.languages ?? [navigator.language]).map((tag) => String(tag).split('-')[0].toLowerCase());
  return [...new Set(tags.filter((t) => /^[a-z]{2,3}$/.test(t)))].slice(0, 8).join(', ') || 'en';
}

// The first thing a person would need to fix, in plain words; null when the form looks complete.
function missing(values) {
  if (values.topics.length === 0) return 'Please write at least one topic, in your own words.';
  if (values.topics.length > 8) return 'Please keep it to 8 topics at most.';
  if (values.topics.some((t) => new TextEncoder().encode(t).length > 48)) return 'Please keep each topic short (a few words).';
  if (values.languages.length === 0) return 'Please name at least one language, such as en or es.';
  if (values.formats.length === 0) return 'Please choose at least one way to talk.';
  if (!values.summary) return 'Please write a few words for others to read.';
  if (new TextEncoder().encode(values.summary).length > 600) return 'Please keep the few words under about 600 letters.';
  if (values.days.length && (!values.from || !values.until)) return 'Please give the time you are usually free from and until.';
  return null;
}

/** The offer or request screen inside `main`; `ctx` is the signed-in { url, doc, keys, token, now }. */
export function offerScreen(main, ctx, { onPublished }) {
  const tz = ownTimeZone();
  const kind = choices('kind', 'What would you like to do?', [['offer', 'Offer support to others'], ['request', 'Ask for support']], {
    type: 'radio',
    checked: ['offer'],
  });
  const topics = field('topics', 'What it is about, in your own words', {
    hint: 'Separate topics with commas, up to 8. For example: panic at night, caring for a parent.',
  });
  const summary = field('summary', 'A few words for others to read', {
    tag: 'textarea',
    hint: 'Everyone on this community and the ones it links with can read this. Please leave out names, addresses and other details that identify you.',
  });
  const languages = field('languages', 'Languages you can talk in', { value: ownLanguages(), hint: 'Short codes separated by commas, such as en, es.' });
  const formats = choices('formats', 'Ways you would like to talk', FORMAT_WORDS, { checked: ['text'] });
  const days = choices('days', 'Days you are usually free (optional)', DAYS.map((d, i) => [String(i), d]), {
    hint: `Times are in your own time zone, ${tz}. Others see them with that zone named.`,
  });
  const from = field('from', 'From', { type: 'time' });
  const until = field('until', 'Until', { type: 'time' });
  const timing = field('timing', 'When', { tag: 'select', options: TIMING_WORDS, value: 'soon' });
  const outcome = el('div', { 'aria-live': 'polite' });
  const form = el(
    'form',
    { id: 'offer', novalidate: true },
    kind.fieldset,
    topics.nodes,
    summary.nodes,
    languages.nodes,
    formats.fieldset,
    days.fieldset,
    el('div', { class: 'pair' }, el('div', {}, from.nodes), el('div', {}, until.nodes)),
    timing.nodes,
    el('p', {}, el('button', { type: 'submit' }, 'Publish')),
    outcome,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const values = {
      kind: kind.chosen()[0],
      topics: words(topics.input.value),
      summary: summary.input.value.trim(),
      languages: words(languages.input.value),
      formats: formats.chosen(),
      tz,
      days: days.chosen().map(Number),
      from: from.input.value,
      until: until.input.value,
      timing: timing.input.value,
    };
    const need = missing(values);
    if (need) {
      show(outcome, el('p', { class: 'error', role: 'alert' }, need));
      return;
    }
    busy(form, true);
    show(outcome, el('p', { role: 'status' }, 'Signing and publishing…'));
    try {
      const body = listingBody(values);
      const at = ctx.now();
      const id = await publishListing(ctx.url, ctx.token, ctx.keys.seed, body, { now: at, maxLifetime: ctx.doc.maxListingLifetime });
      onPublished(id, values.kind);
    } catch (error) {
      busy(form, false);
      const said = error instanceof ProtocolError ? el('p', { class: 'error', role: 'alert' }, 'Please check what you wrote: ', error.message, '.') : problem(error);
      show(outcome, said);
    }
  });
  show(
    main,
    el('h1', { tabindex: '-1', id: 'screen-title' }, 'Offer or ask for support'),
    el('p', {}, 'Others can find this and reach out to you. You choose whether to answer, and you can take it down at any time.'),
    form,
  );
  document.getElementById('screen-title').focus();
}
