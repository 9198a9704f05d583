// The terms of a conversation on screen (spec §8.3, §9.2, §9.3): what was proposed, by whom and
// until when, before anyone agrees; agreeing (countersigning) or proposing other terms; the terms
// in force, shown as lapsed once their date has passed (they stay in force until renewed or ended).
// Every term a peer wrote is shown as text (ui.theirs); every word of our own goes through t().

import { busy, choices, field, problem } from './forms.js';
import { t } from './i18n.js';
import { forgetChoices, forgetFromChoice, termsFromForm, termsState, untilFromDate } from './terms.js';
import { el, show, theirs } from './ui.js';

const FORMATS = ['text', 'voice', 'video', 'in-person', 'sign'];

function day(seconds) {
  return new Date(seconds * 1000).toLocaleDateString([], { dateStyle: 'long', timeZone: 'UTC' });
}

/** A description list of `terms` (parsed, spec §8.3) with `id` on the list. */
export function termsList(terms, id) {
  const row = (label, value) => [el('dt', {}, label), el('dd', {}, value)];
  return el(
    'dl',
    { class: 'terms', id },
    row(t('terms.helps'), theirs(terms.helps)),
    terms.formats.length ? row(t('terms.formats'), terms.formats.map((f) => (FORMATS.includes(f) ? t(`terms.format.${f}`) : f)).join(', ')) : null,
    terms.times !== null ? row(t('terms.times'), theirs(terms.times)) : null,
    row(t('terms.until'), terms.until === null ? t('terms.until.none') : day(terms.until)),
    terms.boundaries.length ? row(t('terms.boundaries'), el('ul', {}, terms.boundaries.map((b) => el('li', {}, theirs(b))))) : null,
    terms.ending !== null ? row(t('terms.ending'), theirs(terms.ending)) : null,
    terms.forget ? row(t('terms.forget'), forgetText(terms.forget)) : null,
  );
}

// How long messages are kept under terms that forget (spec §8.3), in whole days or hours.
function forgetText(seconds) {
  if (seconds === 86_400) return t('terms.forget.day');
  if (seconds % 86_400 === 0) return t('terms.forget.days', { count: seconds / 86_400 });
  return t('terms.forget.hours', { count: Math.floor(seconds / 3600), minutes: Math.floor((seconds % 3600) / 60) });
}

// One choice of the form's "deleting messages" list: after so many days, or hours and minutes.
function forgetChoiceText(seconds) {
  if (seconds === 86_400) return t('terms.form.forget.day');
  if (seconds % 86_400 === 0) return t('terms.form.forget.days', { count: seconds / 86_400 });
  return t('terms.form.forget.hours', { count: Math.floor(seconds / 3600), minutes: Math.floor((seconds % 3600) / 60) });
}

// The form to propose terms, filled with `start` (parsed terms) when there are some to change.
function proposeForm(talk, c, outcome, start) {
  const helps = field('terms-helps', t('terms.form.helps'), { autocomplete: 'off', tag: 'textarea', hint: t('terms.form.helps.hint'), value: start?.helps });
  const ways = choices('terms-format', t('terms.form.formats'), FORMATS.map((f) => [f, t(`terms.format.${f}`)]), { checked: start?.formats ?? [] });
  const times = field('terms-times', t('terms.form.times'), { autocomplete: 'off', hint: t('terms.form.times.hint'), value: start?.times ?? '' });
  const until = field('terms-until', t('terms.form.until'), { autocomplete: 'off', type: 'date', hint: t('terms.form.until.hint') });
  if (start?.until) until.input.value = new Date(start.until * 1000).toISOString().slice(0, 10);
  const bounds = field('terms-boundaries', t('terms.form.boundaries'), { autocomplete: 'off', tag: 'textarea', hint: t('terms.form.boundaries.hint'), value: (start?.boundaries ?? []).join('\n') });
  const ending = field('terms-ending', t('terms.form.ending'), { autocomplete: 'off', hint: t('terms.form.ending.hint'), value: start?.ending ?? '' });
  // Keeping the messages is the default; deleting them is a promise both make (spec §9.7).
  const keep = start?.forget ?? null;
  const forget = field('terms-forget', t('terms.form.forget'), {
    tag: 'select', hint: t('terms.form.forget.hint'), value: keep === null ? '' : String(keep),
    options: [['', t('terms.form.forget.keep')], ...forgetChoices(keep).map((s) => [String(s), forgetChoiceText(s)])],
  });
  const form = el('form', { id: 'propose-terms', novalidate: true },
    helps.nodes, ways.fieldset, times.nodes, until.nodes, bounds.nodes, ending.nodes, forget.nodes,
    el('p', {}, el('button', { type: 'submit' }, t('terms.form.send'))));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!helps.input.value.trim()) {
      show(outcome, el('p', { class: 'error', role: 'alert' }, t('terms.form.helps.missing')));
      helps.input.focus();
      return;
    }
    busy(form, true);
    try {
      const proposed = termsFromForm({
        helps: helps.input.value, formats: ways.chosen(), times: times.input.value,
        until: untilFromDate(until.input.value), boundaries: bounds.input.value.split('\n'), ending: ending.input.value,
        forget: forgetFromChoice(forget.input.value),
      });
      await talk.agree(c, proposed);
      show(outcome, el('p', { role: 'status' }, t('terms.sent')));
    } catch (error) {
      busy(form, false);
      show(outcome, problem(error));
    }
  });
  return form;
}

/**
 * The terms section of an accepted conversation: the terms in force, the current proposal and
 * what can be done with it. `outcome` is where refusals are said.
 */
export function termsSection(talk, c, outcome) {
  const now = talk.ctx.now();
  const { inForce, proposal, unresolved } = termsState(c, now);
  const parts = [el('h2', { id: 'terms-title' }, t('terms.title'))];
  if (inForce) {
    parts.push(el('p', { id: 'terms-in-force' }, inForce.lapsed ? t('terms.in_force.lapsed', { date: day(inForce.terms.until) }) : t('terms.in_force')));
    parts.push(termsList(inForce.terms, 'terms-agreed'));
  } else parts.push(el('p', { class: 'note', id: 'terms-none' }, t('terms.none')));
  if (c.offered && !inForce && !proposal) {
    parts.push(el('p', { class: 'note' }, t('terms.offered')), termsList(c.offered, 'terms-offered'));
  }
  if (proposal) {
    parts.push(el('h3', { id: 'terms-proposal' }, proposal.by === 'me' ? t('terms.proposal.mine') : t('terms.proposal.theirs')));
    parts.push(termsList(proposal.terms, 'terms-proposed'));
    if (proposal.lapsed) parts.push(el('p', { class: 'note' }, t('terms.proposal.lapsed')));
    if (proposal.by === 'me') parts.push(el('p', { class: 'note' }, t('terms.proposal.waiting')));
  }
  if (unresolved) parts.push(el('p', { class: 'note', id: 'terms-unresolved' }, t('terms.unresolved')));
  if (!c.state.live) return parts;
  if (proposal && proposal.by === 'them') {
    const agree = el('button', { type: 'button', id: 'terms-agree' }, t('terms.agree'));
    agree.addEventListener('click', async () => {
      agree.disabled = true;
      try {
        await talk.agree(c, null);
      } catch (error) {
        agree.disabled = false;
        show(outcome, problem(error));
      }
    });
    parts.push(el('p', { class: 'hint' }, t('terms.agree.hint')), el('p', { class: 'actions' }, agree));
  }
  const start = proposal?.terms ?? inForce?.terms ?? c.offered ?? null;
  const form = proposeForm(talk, c, outcome, start);
  const details = el('details', { id: 'terms-other' }, el('summary', {}, proposal || inForce ? t('terms.propose.other') : t('terms.propose')), el('p', { class: 'hint' }, t('terms.propose.hint')), form);
  parts.push(details);
  return parts;
}

/** A short key that changes whenever what the terms section shows would change. */
export function termsKey(talk, c) {
  const s = c.state;
  return [s.state, s.round, (s.roundTerms ?? []).length, s.inForce?.version ?? 0, Boolean(c.offered)].join('/');
}
