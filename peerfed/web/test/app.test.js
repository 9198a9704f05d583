// The app's pure helpers under Node: how text from nodes and peers is made safe to show (spec §9.5).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { visible } from '../src/app/ui.js';
import { nodeUrl } from '../src/app/node.js';

test('control, format and separator characters are shown as escapes, other text unchanged', () => {
  assert.equal(visible('plain words, ñ, 日本, 🙂'), 'plain words, ñ, 日本, 🙂');
  assert.equal(visible('a\u001b[31mb'), 'a\\u001b[31mb');
  assert.equal(visible('line\nbreak\r'), 'line\\u000abreak\\u000d');
  assert.equal(visible('abc\u202eevil\u200b'), 'abc\\u202eevil\\u200b');
  assert.equal(visible('\u2028\u2029\ufeff'), '\\u2028\\u2029\\ufeff');
  assert.equal(visible('<b>not html</b>'), '<b>not html</b>'); // text, never parsed: the DOM gets a text node
});

test('a typed node URL loses trailing slashes and nothing else (spec §13.4)', () => {
  assert.equal(nodeUrl(' https://owls.example/ '), 'https://owls.example');
  assert.equal(nodeUrl('http://127.0.0.1:8740'), 'http://127.0.0.1:8740');
  assert.equal(nodeUrl('HTTPS://Owls.example//'), 'HTTPS://Owls.example');
});
