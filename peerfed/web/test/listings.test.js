// A listing built from a form's values (spec §6.2): the person's words, the day mask, the windows.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listingBody, minutes, words } from '../src/app/listings.js';

const FORM = {
  kind: 'request',
  topics: ['hearing voices'],
  languages: ['es'],
  formats: ['voice', 'text'],
  tz: 'America/Mexico_City',
  days: [5, 6],
  from: '09:30',
  until: '00:00',
  timing: 'scheduled',
  summary: 'Busco alguien con quien hablar.',
};

test('typed topics are split by commas, trimmed, with repeats and empties dropped', () => {
  assert.deepEqual(words(' panic at night,,  insomnia ,panic  at night'), ['panic at night', 'insomnia']);
  assert.deepEqual(words(''), []);
  assert.equal(minutes('21:05'), 1265);
  assert.equal(minutes(''), null);
});

test('a form becomes the spec body: formats in the spec order, Saturday and Sunday as bits 5 and 6, midnight as 1440', () => {
  assert.deepEqual(listingBody(FORM), [
    'request', ['hearing voices'], [], ['es'], ['text', 'voice'], 'America/Mexico_City',
    [[0b1100000, 570, 1440]], 'scheduled', 1, null, 'Busco alguien con quien hablar.',
  ]);
  assert.deepEqual(listingBody({ ...FORM, days: [] })[6], []);
});

test('an invalid form is refused with schema.invalid before anything is signed', () => {
  assert.throws(() => listingBody({ ...FORM, topics: [] }), { code: 'schema.invalid' });
  assert.throws(() => listingBody({ ...FORM, from: '' }), { code: 'schema.invalid' });
  assert.throws(() => listingBody({ ...FORM, from: '22:00', until: '21:00' }), { code: 'schema.invalid' });
});
