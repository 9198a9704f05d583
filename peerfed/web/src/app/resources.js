// The community's own support resources, from its signed node document (spec §13.2): one tap away
// on every screen, each with an honest line on whether contacting it may involve emergency services.

import { el, show, theirs } from './ui.js';

const EMERGENCY = {
  never: 'Contacting them never involves emergency services.',
  'on-request': 'They involve emergency services (such as police or an ambulance) only if you ask them to.',
  may: 'They may involve emergency services (such as police or an ambulance).',
};

function resource(item) {
  return el(
    'article',
    { class: 'resource' },
    el('h3', {}, theirs(item.name)),
    el('p', {}, theirs(item.contact)),
    item.hours ? el('p', {}, 'When: ', theirs(item.hours)) : null,
    item.languages.length ? el('p', {}, 'Languages: ', theirs(item.languages.join(', '))) : null,
    el('p', { class: 'note' }, EMERGENCY[item.emergency]),
    item.note ? el('p', { class: 'note' }, theirs(item.note)) : null,
  );
}

/** Fill `section` with the resources of `doc` (a node document's body). */
export function renderResources(section, doc) {
  show(
    section,
    el('h2', { id: 'resources-title', tabindex: '-1' }, 'Support now'),
    doc.resources.length
      ? el('p', {}, 'This community suggests these, in its own words:')
      : el('p', {}, 'This community has not listed any support resources. If you are in danger, call your local emergency number.'),
    doc.resources.map(resource),
  );
}
