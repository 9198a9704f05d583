// Offer support or ask for it (spec §6.2): topics in the person's own words, languages, ways to
// talk, and when they are usually free in their own time zone. The listing is built and signed in
// this page (listings.js) and only its public card reaches the node.

import { ProtocolError } from '../protocol/index.js';
import { choices, busy, field, problem, refused } from './forms.js';
import { language, t } from './i18n.js';
import { DAYS, listingBody, publishListing, words } from './listings.js';
import { el, show } from './ui.js';

/** Each way to talk with its words in the current language: [[format, words], ...]. */
export const FORMAT_WORDS = () => [
  ['text', t('format.text')],
  ['voice', t('format.voice')],
  ['video', t('format.video')],
  ['in-person', t('format.in_person')],
  ['sign', t('format.sign')],
];
/** Each timing with its words in the current language: [[timing, words], ...]. */
export const TIMING_WORDS = () => [
  ['now', t('timing.now')],
  ['soon', t('timing.soon')],
  ['scheduled', t('timing.scheduled')],
];

/** The days of the week, Monday first as spec §6.2 counts them, named in the current language. */
export function dayNames(weekday = 'long') {
  const format = new Intl.DateTimeFormat(language(), { weekday, timeZone: 'UTC' });
  return DAYS.map((_, i) => format.format(new Date(Date.UTC(2024, 0, 1 + i)))); // 1 January 2024 was a Monday
}

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
  if (values.topics.length === 0) return t('offer.need_topic');
  if (values.topics.length > 8) return t('offer.too_many_topics');
  if (values.topics.some((topic) => new TextEncoder().encode(topic).length > 48)) return t('offer.long_topic');
  if (values.languages.length === 0) return t('offer.need_language');
  if (values.formats.length === 0) return t('offer.need_format');
  if (!values.summary) return t('offer.need_summary');
  if (new TextEncoder().encode(values.summary).length > 600) return t('offer.long_summary');
  if (values.days.length && (!values.from || !values.until)) return t('offer.need_times');
  return null;
}

/** The offer or request screen inside `main`; `ctx` is the signed-in { url, doc, keys, token, now }. */
export function offerScreen(main, ctx, { onPublished }) {
  const tz = ownTimeZone();
  const kind = choices('kind', t('offer.kind'), [['offer', t('offer.kind_offer')], ['request', t('offer.kind_request')]], {
    type: 'radio',
    checked: ['offer'],
  });
  const topics = field('topics', t('offer.topics'), {
    hint: t('offer.topics_hint'),
  });
  const summary = field('summary', t('offer.summary'), {
    tag: 'textarea',
    hint: t('offer.summary_hint'),
  });
  const languages = field('languages', t('offer.languages'), { value: ownLanguages(), hint: t('offer.languages_hint') });
  const formats = choices('formats', t('offer.formats'), FORMAT_WORDS(), { checked: ['text'] });
  const days = choices('days', t('offer.days'), dayNames().map((d, i) => [String(i), d]), {
    hint: t('offer.days_hint', { tz }),
  });
  const from = field('from', t('offer.from'), { type: 'time' });
  const until = field('until', t('offer.until'), { type: 'time' });
  const timing = field('timing', t('offer.timing'), { tag: 'select', options: TIMING_WORDS(), value: 'soon' });
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
    el('p', {}, el('button', { type: 'submit' }, t('offer.submit'))),
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
      refused(outcome, el('p', { class: 'error', role: 'alert', tabindex: '-1' }, need));
      return;
    }
    busy(form, true);
    show(outcome, el('p', { role: 'status' }, t('offer.working')));
    try {
      const body = listingBody(values);
      const at = ctx.now();
      const id = await publishListing(ctx.url, ctx.token, ctx.keys.seed, body, { now: at, maxLifetime: ctx.doc.maxListingLifetime });
      onPublished(id, values.kind);
    } catch (error) {
      busy(form, false);
      const said = error instanceof ProtocolError ? el('p', { class: 'error', role: 'alert', tabindex: '-1' }, t('offer.invalid', { detail: error.message })) : problem(error);
      refused(outcome, said);
    }
  });
  show(
    main,
    el('h1', { tabindex: '-1', id: 'screen-title' }, t('offer.title')),
    el('p', {}, t('offer.intro')),
    form,
  );
  document.getElementById('screen-title').focus();
}
