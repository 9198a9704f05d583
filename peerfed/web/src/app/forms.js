// Form pieces shared by the screens (spec §13.10): labelled controls, a busy state, and refusals
// said in plain words. Every string is set as text (ui.js), never parsed as HTML.

import { t } from './i18n.js';
import { el, show } from './ui.js';

// What a refusal means, in plain words; anything else shows its code so it can be looked up.
const PLAIN = {
  'auth.invite': () => t('problem.invite'),
  'auth.pending': () => t('problem.pending'),
  'auth.work': () => t('problem.work'),
  'local.passphrase': () => t('problem.passphrase'),
  'local.unreachable': () => t('problem.unreachable'),
  'rate.limited': () => t('problem.rate'),
  'time.lifetime': () => t('problem.lifetime'),
};

/** An alert saying what went wrong with `error` (a NodeError or ProtocolError), plainly. */
export function problem(error) {
  if (error?.code === 'auth.moved') return el('p', { class: 'error', role: 'alert', tabindex: '-1' }, t('device.moved.refused'));
  const plain = Object.hasOwn(PLAIN, error?.code ?? '') ? PLAIN[error.code]() : t('problem.other', { code: error?.code ?? 'unknown' });
  return el('p', { class: 'error', role: 'alert', tabindex: '-1' }, plain);
}

/** Show the refusal `said` (an alert from problem()) in `outcome` and move the focus to it, so it is heard and seen. */
export function refused(outcome, said) {
  show(outcome, said);
  said.focus();
}

/** A labelled control and its hint: { input, nodes }. `tag` may be 'input', 'textarea' or 'select'. */
export function field(id, label, { type = 'text', hint, autocomplete, tag = 'input', value, options } = {}) {
  const input = el(tag, {
    id,
    name: id,
    type: tag === 'input' ? type : null,
    autocomplete,
    rows: tag === 'textarea' ? 4 : null,
    'aria-describedby': hint ? `${id}-hint` : null,
  });
  for (const [optionValue, words] of options ?? []) input.append(el('option', { value: optionValue }, words));
  if (value !== undefined) input.value = value;
  return {
    input,
    nodes: [el('label', { for: id }, label), hint ? el('p', { id: `${id}-hint`, class: 'hint' }, hint) : null, input],
  };
}

/** A group of checkboxes or radios under a legend: { fieldset, chosen() } with chosen() the checked values. */
export function choices(name, legend, items, { type = 'checkbox', checked = [], hint } = {}) {
  const boxes = items.map(([value, words]) => {
    const id = `${name}-${value}`;
    const box = el('input', { type, id, name, value, checked: checked.includes(value) });
    return { box, node: el('div', { class: 'choice' }, box, el('label', { for: id }, words)) };
  });
  const fieldset = el(
    'fieldset',
    { 'aria-describedby': hint ? `${name}-hint` : null },
    el('legend', {}, legend),
    hint ? el('p', { id: `${name}-hint`, class: 'hint' }, hint) : null,
    boxes.map((b) => b.node),
  );
  return { fieldset, chosen: () => boxes.filter((b) => b.box.checked).map((b) => b.box.value) };
}

/** Disable or enable every control of `form` while it works. */
export function busy(form, working) {
  for (const control of form.querySelectorAll('button, input, select, textarea')) control.disabled = working;
}
