// The signed `prekeys` upload (spec §13.5 One-time pre-keys): signed under the client-auth context,
// 1 to 100 keys of 32 bytes, for at most 600 s, so a token alone cannot fill a peer's stock.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { openSigned, randomBytes, sign } from '../src/protocol/index.js';

const NOW = 1_800_000_000;
const URL = 'https://node.example';
const seed = randomBytes(32);
const keys = (n) => Array.from({ length: n }, () => randomBytes(32));

test('a prekeys upload opens under the client-auth context with its node and keys', () => {
  const upload = sign(seed, 'prekeys', [URL, keys(3)], { createdAt: NOW, expiresAt: NOW + 300 });
  const opened = openSigned(upload.raw, { context: 'peerfed/v1/client-auth', now: NOW });
  assert.equal(opened.type, 'prekeys');
  assert.equal(opened.body.node, URL);
  assert.equal(opened.body.keys.length, 3);
  assert.throws(() => openSigned(upload.raw, { context: 'peerfed/v1/envelope', now: NOW }), { name: 'ProtocolError' });
});

test('a prekeys upload holds 1 to 100 keys of 32 bytes and lives at most 600 s', () => {
  const at = { createdAt: NOW, expiresAt: NOW + 600 };
  assert.equal(sign(seed, 'prekeys', [URL, keys(100)], at).type, 'prekeys');
  for (const body of [[URL, []], [URL, keys(101)], [URL, [randomBytes(31)]], ['not a url', keys(1)]]) {
    assert.throws(() => sign(seed, 'prekeys', body, at), { code: 'schema.invalid' });
  }
  assert.throws(() => sign(seed, 'prekeys', [URL, keys(1)], { createdAt: NOW, expiresAt: NOW + 601 }), { code: 'time.lifetime' });
});
