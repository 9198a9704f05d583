// English interface text (spec §13.10). Keys are grouped by screen; each screen's strings stay
// together so work on different screens touches different blocks. Placeholders look like {name}.

export const en = {
  tag: 'en',
  dir: 'ltr',
  name: 'English',
  strings: {
    // --- shared ---
    'language.label': 'Language',
  },
};
