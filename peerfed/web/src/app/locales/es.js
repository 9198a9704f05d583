// Spanish interface text (spec §13.10): the same keys as en.js; a missing key falls back to English.

export const es = {
  tag: 'es',
  dir: 'ltr',
  name: 'Español',
  strings: {
    // --- shared ---
    'language.label': 'Idioma',
  },
};
