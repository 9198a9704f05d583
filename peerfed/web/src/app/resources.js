// The community's own support resources, from its signed node document (spec §13.2): one tap away
// on every screen, each with an honest line on whether contacting it may involve emergency services.

import { t, tn } from './i18n.js';
import { el, show, theirs } from './ui.js';

const EMERGENCY = {
  never: () => t('resources.never'),
  'on-request': () => t('resources.on_request'),
  may: () => t('resources.may'),
};

function resource(item) {
  return el(
    'article',
    { class: 'resource' },
    el('h3', {}, theirs(item.name)),
    el('p', {}, theirs(item.contact)),
    item.hours ? el('p', {}, ...tn('resources.when', { hours: theirs(item.hours) })) : null,
    item.languages.length ? el('p', {}, ...tn('resources.languages', { languages: theirs(item.languages.join(', ')) })) : null,
    el('p', { class: 'note' }, EMERGENCY[item.emergency]?.() ?? ''),
    item.note ? el('p', { class: 'note' }, theirs(item.note)) : null,
  );
}

/** Fill `section` with the resources of `doc` (a node document's body). */
export function renderResources(section, doc) {
  show(
    section,
    el('h2', { id: 'resources-title', tabindex: '-1' }, t('resources.title')),
    doc.resources.length
      ? el('p', {}, t('resources.intro'))
      : el('p', {}, t('resources.none')),
    doc.resources.map(resource),
  );
}
