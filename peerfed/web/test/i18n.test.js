// The interface language catalogues (spec §13.10): every key in every catalogue exists in English,
// placeholders agree, and tn() keeps nodes in place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CATALOGUES, setLanguage, t, tn } from '../src/app/i18n.js';

const placeholders = (s) => [...s.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]).sort();

test('every catalogue key exists in English with the same placeholders', () => {
  const english = CATALOGUES.en.strings;
  for (const [tag, catalogue] of Object.entries(CATALOGUES)) {
    for (const [key, words] of Object.entries(catalogue.strings)) {
      assert.ok(key in english, `${tag} has ${key}, English does not`);
      assert.deepEqual(placeholders(words), placeholders(english[key]), `${tag} ${key}`);
    }
  }
});

test('a language is chosen, unknown keys throw, and tn keeps values as given', () => {
  assert.equal(setLanguage('es-MX'), 'es');
  assert.equal(t('language.label'), 'Idioma');
  assert.equal(setLanguage('xx'), 'en');
  assert.throws(() => t('no.such.key'));
  const node = { a: 'node' };
  CATALOGUES.en.strings['test.joined'] = 'You joined {name}.';
  assert.deepEqual(tn('test.joined', { name: node }), ['You joined ', node, '.']);
  delete CATALOGUES.en.strings['test.joined'];
});
