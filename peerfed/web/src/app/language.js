// The language chooser at the top of every screen (spec §13.10): each language named in itself,
// the choice remembered on this device, and the page redrawn in place so nothing typed elsewhere
// or any conversation is lost by choosing.

import { CATALOGUES, language, setLanguage, t } from './i18n.js';
import { el } from './ui.js';

/**
 * A labelled select of every catalogue's language: { nodes, relabel() }. `onChange()` redraws the
 * page once the choice is made and remembered; focus then comes back to the select.
 */
export function languageChooser(onChange) {
  const options = Object.values(CATALOGUES).map((c) => el('option', { value: c.tag, lang: c.tag, dir: c.dir }, c.name));
  const select = el('select', { id: 'language', name: 'language' }, options);
  const label = el('label', { for: 'language' }, t('language.label'));
  const relabel = () => {
    label.textContent = t('language.label');
    select.value = language();
  };
  select.addEventListener('change', () => {
    setLanguage(select.value, { remember: true });
    relabel();
    onChange();
    select.focus();
  });
  relabel();
  return { nodes: el('div', { class: 'language' }, label, select), relabel };
}
