// A conversation written into a backup's tables and read back (spec §9.6): the same history,
// the same state, the next sequence number kept. That the CLI reads these tables is proved by
// tests/client/test_web_device.py, through the real programs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backupFromBytes, backupToBytes, encryptionPublic, identityFromSeed, keyringFromBytes, randomBytes, sign, toHex,
} from '../src/protocol/index.js';
import { backupOf, metaOf, talkFromBackup } from '../src/app/device.js';
import { rebuild } from '../src/app/talk_state.js';

const NOW = 1_800_000_000;
const TIMES = { createdAt: NOW - 100, expiresAt: NOW + 86_400 };
const seed = (n) => new Uint8Array(32).fill(n);
const rio = { seed: seed(1), encryption: [{ secret: seed(2), createdAt: NOW - 200, expiresAt: NOW + 5_000_000 }] };
const ana = { seed: seed(3), secret: seed(4) };
const pub = (s) => identityFromSeed(s).publicKey;

function conversation() {
  const connection = randomBytes(16);
  const bundle = sign(rio.seed, 'key-bundle', [encryptionPublic(rio.encryption[0].secret), 'http://127.0.0.1:1', 'Rio'], TIMES).raw;
  const events = [
    sign(rio.seed, 'reach-out', [pub(ana.seed), connection, seed(9), 'Hello', null, bundle], TIMES),
    sign(ana.seed, 'response', [pub(rio.seed), connection, true, 'Of course'], TIMES),
    sign(ana.seed, 'message', [pub(rio.seed), connection, 1, null, 'From Ana'], TIMES),
    sign(rio.seed, 'message', [pub(ana.seed), connection, 1, null, 'From Rio'], TIMES),
  ].map((e) => e.raw);
  const c = rebuild(pub(rio.seed), [toHex(connection), true, pub(ana.seed), encryptionPublic(ana.secret), 'http://127.0.0.1:1', 'Ana', null, 0, false, null, null, events]);
  return c;
}

test('a backup of a conversation reads back into the same conversation, ready to go on', async () => {
  const c = conversation();
  const talk = { me: pub(rio.seed), conversations: new Map([[c.id, c]]), blocked: new Set([toHex(seed(8))]) };
  const contents = backupOf(rio, talk, { node: 'http://127.0.0.1:1', name: 'Rio' });
  const opened = backupFromBytes(backupToBytes(contents));
  const backup = { ...opened, keys: keyringFromBytes(opened.keyring) };
  assert.equal(metaOf(backup, 'node'), 'http://127.0.0.1:1');
  const [, connections] = backup.tables.find(([n]) => n === 'connections');
  assert.equal(connections.length, 1);
  assert.equal(connections[0][3], 'reacher');
  assert.equal(connections[0][6], 1); // Ana's messages read through seq 1

  // No bundle is carried: the device that opens it asks for the current one.
  const asked = [];
  const bundleFor = async (peer) => {
    asked.push(toHex(peer));
    return { encryptionKey: encryptionPublic(ana.secret), home: 'http://127.0.0.1:1', name: 'Ana' };
  };
  const back = await talkFromBackup(backup, { now: NOW, bundleFor });
  assert.deepEqual(asked, [toHex(pub(ana.seed))]);
  const again = back.conversations.get(c.id);
  assert.equal(again.state.state, 'accepted');
  assert.equal(again.hello, 'Hello');
  assert.equal(again.reply, 'Of course');
  assert.deepEqual(again.messages.map((m) => m.text), ['From Ana', 'From Rio']);
  assert.equal(again.nextSeq, 2);
  assert.ok(back.blocked.has(toHex(seed(8))));
});

test('the author side takes the reacher’s key from the reach-out, and an erased conversation is left out', async () => {
  const c = conversation();
  const erased = { ...conversation(), erased: true, events: [] };
  const talk = { me: pub(rio.seed), conversations: new Map([[c.id, c], [erased.id, erased]]), blocked: new Set() };
  const opened = backupFromBytes(backupToBytes(backupOf(rio, talk, { node: 'http://127.0.0.1:1', name: null })));
  // Read as Ana would: the same tables, her keys, her side.
  const tables = opened.tables.map(([n, rows]) => [n, n === 'connections' ? rows.map((r) => [r[0], r[1], pub(rio.seed), 'author', ...r.slice(4)]) : rows]);
  const asAna = { ...opened, tables, keys: { seed: ana.seed, encryption: [{ secret: ana.secret, createdAt: NOW, expiresAt: NOW + 1 }] } };
  const back = await talkFromBackup(asAna, { now: NOW, bundleFor: () => assert.fail('the reach-out carries the bundle') });
  assert.equal(back.conversations.size, 1);
  const mine = back.conversations.get(c.id);
  assert.equal(mine.other.name, 'Rio');
  assert.deepEqual(mine.other.encryptionKey, encryptionPublic(rio.encryption[0].secret));
  assert.equal(mine.nextSeq, 2);
});

test('the live reconnect waits as the CLI does: 0.5 s, then twice as long, at most 30 s (spec §9.5)', async () => {
  const { backoff } = await import('../src/app/live.js');
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 20].map(backoff), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

test('a key is renewed from 20 days before its end, for 60 days, and old ones kept 30 days past theirs', async () => {
  const { renewKeysIfDue } = await import('../src/app/account.js');
  const DAY = 86_400;
  const keys = { seed: seed(1), encryption: [{ secret: seed(2), createdAt: NOW - 100 * DAY, expiresAt: NOW - 31 * DAY }, { secret: seed(5), createdAt: NOW - 30 * DAY, expiresAt: NOW + 21 * DAY }] };
  assert.equal(renewKeysIfDue(keys, NOW), false);
  assert.equal(renewKeysIfDue(keys, NOW + DAY), true);
  assert.equal(keys.encryption.length, 2); // the one that ended 32 days before is gone
  assert.deepEqual(keys.encryption[0].secret, seed(5));
  assert.equal(keys.encryption[1].expiresAt - keys.encryption[1].createdAt, 60 * DAY);
  assert.equal(renewKeysIfDue(keys, NOW + DAY), false);
});

test('an invite code travels in the fragment only, and only as a plain code', async () => {
  const { inviteFrom, inviteLink } = await import('../src/app/invite.js');
  assert.equal(inviteLink('https://night.example', 'ev5aqxlvskh7tt4r'), 'https://night.example/#invite=ev5aqxlvskh7tt4r');
  assert.equal(inviteFrom('#invite=ev5aqxlvskh7tt4r'), 'ev5aqxlvskh7tt4r');
  assert.equal(inviteFrom(''), null);
  assert.equal(inviteFrom('#invite=<b>x</b>'), null);
  assert.equal(inviteFrom(`#invite=${'a'.repeat(129)}`), null);
});
