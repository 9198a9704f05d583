// The browser's own safety limits (spec §12, §13.5): unanswered reach-outs are bounded in all and
// per sender so no one can flood a person, an expired one stops counting and is forgotten, a
// blocked peer's mail is dropped until they are unblocked, and the page title counts unread mail.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encryptionPublic, identityFromSeed, randomBytes, seal, sign, toHex } from '../src/protocol/index.js';
import { PENDING_PER_SENDER_CAP, PENDING_REACH_OUTS_CAP, Talk } from '../src/app/talk.js';
import { titleFor } from '../src/app/notify.js';

let now = 1_800_000_000;

function person() {
  const seed = randomBytes(32);
  const secret = randomBytes(32);
  return { seed, id: identityFromSeed(seed).publicKey, secret, key: encryptionPublic(secret) };
}

const me = person();
function talk() {
  const t = new Talk({ keys: { seed: me.seed, encryption: [{ secret: me.secret }] }, now: () => now, doc: { limits: new Map() } });
  t.persist = () => Promise.resolve(); // no IndexedDB under Node: keeping state is the browser test's part
  return t;
}

// A sealed reach-out from `from` to me, expiring in `lifetime` seconds.
function reachOut(from, lifetime = 7 * 86_400) {
  const at = { createdAt: now - 10, expiresAt: now + lifetime };
  const bundle = sign(from.seed, 'key-bundle', [from.key, 'https://b.example', 'Someone'], at).raw;
  const inner = sign(from.seed, 'reach-out', [me.id, randomBytes(16), randomBytes(32), 'Hello', null, bundle], at);
  return seal(inner, me.key).raw;
}

test(`at most ${PENDING_PER_SENDER_CAP} waiting reach-outs from one peer and ${PENDING_REACH_OUTS_CAP} in all`, () => {
  const t = talk();
  const flooder = person();
  for (let i = 0; i < 5; i++) t.receive(reachOut(flooder), null);
  assert.equal(t.pending().length, PENDING_PER_SENDER_CAP);
  for (let i = 0; i < 30; i++) t.receive(reachOut(person()), null);
  assert.equal(t.pending().length, PENDING_REACH_OUTS_CAP);
  assert.equal(t.unread, PENDING_REACH_OUTS_CAP);
  // Past the cap a genuine one is dropped unseen; once some expire, new ones are kept again.
  const late = person();
  t.receive(reachOut(late), null);
  assert.ok(![...t.conversations.values()].some((c) => toHex(c.peer) === toHex(late.id)));
});

test('an expired reach-out stops counting and is forgotten', () => {
  const t = talk();
  const start = now;
  for (let i = 0; i < PENDING_REACH_OUTS_CAP; i++) t.receive(reachOut(person(), 3600), null);
  assert.equal(t.pending().length, PENDING_REACH_OUTS_CAP);
  now = start + 3601;
  try {
    const later = person();
    t.receive(reachOut(later), null);
    assert.equal(t.pending().length, 1);
    assert.equal(t.conversations.size, 1);
    assert.equal(toHex([...t.conversations.values()][0].peer), toHex(later.id));
  } finally {
    now = start;
  }
});

test('a blocked peer is dropped unread until unblocked', () => {
  const t = talk();
  const other = person();
  t.receive(reachOut(other), null);
  const [first] = t.conversations.values();
  t.block(first);
  assert.equal(t.conversations.size, 0); // their unanswered reach-out goes too
  t.receive(reachOut(other), null);
  assert.equal(t.conversations.size, 0);
  t.unblock(toHex(other.id));
  assert.equal(t.blocked.size, 0);
  t.receive(reachOut(other), null);
  assert.equal(t.conversations.size, 1);
});

test('the page title counts unread mail, and only when there is some', () => {
  assert.equal(titleFor('Night Owls · Peer support', 0), 'Night Owls · Peer support');
  assert.equal(titleFor('Night Owls · Peer support', 3), '(3) Night Owls · Peer support');
});
