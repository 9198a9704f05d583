// Interface language (spec §13.10): every word the app itself says comes from a catalogue in
// locales/, chosen from the person's choice or the browser's languages, with English as the
// fallback for a key a catalogue lacks. Text from peers and nodes never goes through here.

import { en } from './locales/en.js';
import { es } from './locales/es.js';
import { ar } from './locales/ar.js';

/** The catalogues: language tag -> { dir, name, strings }. */
export const CATALOGUES = { en, es, ar };
const CHOSEN = 'peerfed.language';

let current = en;

/** The language in use: 'en', 'es', ... */
export function language() {
  return current.tag;
}

/**
 * Use `tag` (or, when absent, the saved choice, then the first of the browser's languages we
 * have, then English) and set the page's lang and dir, so right-to-left languages lay out mirrored.
 */
export function setLanguage(tag, { remember = false } = {}) {
  const wanted = [tag, safeStorage()?.getItem(CHOSEN), ...(globalThis.navigator?.languages ?? [])];
  const found = wanted.filter(Boolean).map((t) => CATALOGUES[String(t).toLowerCase().split('-')[0]]).find(Boolean);
  current = found ?? en;
  if (remember && tag) safeStorage()?.setItem(CHOSEN, current.tag);
  if (globalThis.document) {
    document.documentElement.lang = current.tag;
    document.documentElement.dir = current.dir;
  }
  return current.tag;
}

/**
 * The words for `key` in the current language, with each `{name}` replaced by `vars[name]`.
 * Unknown keys throw, so a typo fails a test instead of showing a key to a person.
 */
export function t(key, vars = {}) {
  return parts(key, vars).join('');
}

/**
 * Like t(), but returns the pieces as an array so a value may be a DOM node (a peer's text made
 * safe by ui.theirs) placed where the language wants it: el('p', {}, ...tn('joined', { name: node })).
 */
export function tn(key, vars = {}) {
  return parts(key, vars);
}

function parts(key, vars) {
  const template = current.strings[key] ?? en.strings[key];
  if (template === undefined) throw new Error(`no interface text for ${key}`);
  return template
    .split(/(\{[a-z_]+\})/)
    .filter((piece) => piece !== '')
    .map((piece) => {
      const name = /^\{([a-z_]+)\}$/.exec(piece)?.[1];
      if (name === undefined) return piece;
      const value = vars[name];
      return typeof value === 'number' ? value.toLocaleString(current.tag) : (value ?? '');
    });
}

function safeStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage refused (private mode, sandboxed frame): the choice is not remembered
  }
}
