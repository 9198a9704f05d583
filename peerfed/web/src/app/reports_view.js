// Reporting, on screen (spec §13.5 Reports, §12): the form that sends a report to one's own node
// with the disclosure the person chooses (only their reason, or also what the other side sent in
// this conversation, explained plainly before anything is sent), and "Your reports" with what
// the moderators did. A moderator's outcome is shown as text (ui.theirs), never as HTML.

import { equalBytes } from '../protocol/index.js';
import { busy, field, problem } from './forms.js';
import { t, tn } from './i18n.js';
import { disclosable, myReports, sendReport } from './reports.js';
import { el, show, theirs } from './ui.js';

/**
 * A report form about `target` ({ peer } or { listing }); `conversation` (optional) is the one
 * whose other side's messages may be shown; `name` is a text node naming them. `me` is this peer's id.
 */
export function reportForm(ctx, me, target, { conversation = null, name } = {}) {
  const reason = field('report-reason', t('report.reason'), { autocomplete: 'off', tag: 'textarea', hint: t('report.reason.hint') });
  const outcome = el('div', { 'aria-live': 'polite' });
  const named = () => (typeof name === 'string' || !name ? name ?? '' : name.cloneNode(true));
  const canShow = conversation !== null && disclosable(conversation, me, ctx.now()).length > 0;
  const option = (value, words, checked) =>
    el('div', { class: 'choice' },
      el('input', { type: 'radio', name: 'report-disclose', id: `report-disclose-${value}`, value, checked, 'aria-describedby': 'report-disclose-hint' }),
      el('label', { for: `report-disclose-${value}` }, words));
  const choice = canShow
    ? el('fieldset', {},
      el('legend', {}, t('report.disclose.legend')),
      option('none', t('report.disclose.none'), true),
      option('theirs', tn('report.disclose.theirs', { name: named() }), false),
      el('p', { class: 'hint', id: 'report-disclose-hint' }, ...tn('report.disclose.explain', { name: named() })))
    : el('p', { class: 'hint', id: 'report-disclose-hint' }, t('report.disclose.nothing'));
  const form = el('form', { id: 'report', novalidate: true },
    el('p', {}, t('report.intro')),
    reason.nodes, choice,
    el('p', {}, el('button', { type: 'submit' }, t('report.send'))), outcome);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const words = reason.input.value.trim();
    if (!words) {
      show(outcome, el('p', { class: 'error', role: 'alert' }, t('report.reason.missing')));
      reason.input.focus();
      return;
    }
    const showTheirs = canShow && form.querySelector('#report-disclose-theirs').checked;
    busy(form, true);
    try {
      const disclosed = showTheirs ? disclosable(conversation, me, ctx.now()) : [];
      await sendReport(ctx, target, words, disclosed);
      reason.input.value = '';
      show(outcome, el('p', { role: 'status', id: 'report-sent' }, showTheirs ? t('report.sent.shown', { count: disclosed.length }) : t('report.sent')));
    } catch (error) {
      show(outcome, problem(error));
    } finally {
      busy(form, false);
    }
  });
  return form;
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

function item(report) {
  const about = report.target === null ? t('reports.about.gone') : report.target_kind === 'listing' ? t('reports.about.listing') : t('reports.about.peer');
  const resolved = report.status === 'resolved';
  return el('li', { class: 'listing report' },
    el('h2', {}, about),
    report.target ? el('p', { class: 'peer-id' }, theirs(String(report.target))) : null,
    Number.isInteger(report.created_at) ? el('p', { class: 'note' }, t('reports.sent_at', { when: when(report.created_at) })) : null,
    resolved
      ? el('p', { class: 'outcome' }, t('reports.resolved'), ' ', typeof report.outcome === 'string' ? theirs(report.outcome) : '')
      : el('p', { class: 'note' }, t('reports.open')));
}

/**
 * A closed disclosure widget labelled `summary` whose report form (see reportForm) is made each
 * time it opens, so what can be shown is what this device holds then; one form on the page at a time.
 */
export function reportBox(ctx, me, target, summary, options) {
  const box = el('details', { class: 'report' }, el('summary', {}, summary));
  box.addEventListener('toggle', () => {
    if (!box.open) return;
    for (const other of document.querySelectorAll('details.report[open]')) if (other !== box) other.open = false;
    document.getElementById('report')?.remove();
    box.append(reportForm(ctx, me, target, typeof options === 'function' ? options() : options));
  });
  return box;
}

/**
 * The report widget under one directory listing: the form is made when opened (one at a time, so
 * its ids stay unique on the page), and may show what the listing's author sent in a conversation
 * with this person, as the CLI's `report LISTING --disclose CONNECTION` can.
 */
export function listingReport(talk, listing) {
  return reportBox(talk.ctx, talk.me, { listing: listing.id }, t('report.open.listing'), () => {
    const withThem = [...talk.conversations.values()].filter((c) => equalBytes(c.peer, listing.author) && c.events?.length).pop() ?? null;
    return { conversation: withThem, name: withThem?.other?.name ? theirs(withThem.other.name) : t('report.listing_author') };
  });
}

/** "Your reports": each report this person made and what the moderators did (GET /reports). */
export async function reportsScreen(main, ctx) {
  const list = el('div', { id: 'reports', 'aria-live': 'polite' }, el('p', { role: 'status' }, t('reports.loading')));
  show(main, el('h1', { tabindex: '-1', id: 'screen-title' }, t('reports.title')), el('p', { class: 'hint' }, t('reports.hint')), list);
  document.getElementById('screen-title').focus();
  try {
    const reports = await myReports(ctx);
    show(list, reports.length ? el('ul', { class: 'listings' }, reports.map(item)) : el('p', {}, t('reports.none')));
  } catch (error) {
    show(list, problem(error));
  }
}
