// The order a conversation is shown in (spec §9.5), the same on both devices whoever reads it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { displayOrder } from '../src/app/conversations.js';

const low = new Uint8Array(32).fill(1);
const high = new Uint8Array(32).fill(2);
const m = (mine, seq, createdAt) => ({ mine, seq, createdAt, text: `${mine ? 'me' : 'them'}${seq}` });

test('each side in seq order, runs merged by created_at, a tie to the smaller peer id', () => {
  const messages = [m(false, 2, 20), m(true, 1, 10), m(false, 1, 10), m(true, 2, 30)];
  assert.deepEqual(displayOrder(messages, low, high).map((x) => x.text), ['me1', 'them1', 'them2', 'me2']);
  assert.deepEqual(displayOrder(messages, high, low).map((x) => x.text), ['them1', 'me1', 'them2', 'me2']);
  // seq decides within a side even against the clock
  assert.deepEqual(displayOrder([m(true, 2, 5), m(true, 1, 9)], low, high).map((x) => x.text), ['me1', 'me2']);
});
