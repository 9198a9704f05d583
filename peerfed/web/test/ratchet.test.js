// Sealing scheme 2's ratchet in the browser core (spec §14.3, §14.6): seeded random schedules of
// sends, deliveries, drops and replays converge for every delivered message, never reuse a message
// key, and refuse replays; the skipped-key bound refuses with its code and changes nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  initiate, MAX_SKIP, ProtocolError, ratchetDecrypt, ratchetEncrypt, respond, startInitiator, startResponder,
  toHex, x25519Public,
} from '../src/protocol/index.js';

const MAILBOX = new Uint8Array(32).fill(7);
const CONN = new Uint8Array(16).fill(5);
const CTX = new TextEncoder().encode('test-context');
const KEY = new Uint8Array(32).fill(0x41);
const PREKEY = new Uint8Array(32).fill(0x42);
const ONE_TIME = new Uint8Array(32).fill(0x43);
const SEED = new Uint8Array(32).fill(9);

let counter = 0;
function fresh() {
  counter += 1;
  const out = new Uint8Array(32);
  new DataView(out.buffer).setUint32(28, counter);
  return out;
}

function start() {
  const first = fresh();
  const { secret, agreement } = initiate(MAILBOX, CONN, x25519Public(KEY), x25519Public(PREKEY), x25519Public(ONE_TIME), {
    seed: SEED, firstKey: x25519Public(first), ephemeral: fresh(),
  });
  const theirs = respond(MAILBOX, CONN, agreement, { key: KEY, prekey: PREKEY, oneTime: ONE_TIME });
  assert.equal(toHex(theirs), toHex(secret));
  return [startInitiator(secret, x25519Public(PREKEY), agreement, first), startResponder(theirs, PREKEY)];
}

function codeOf(fn) {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, String(err));
    return err.code;
  }
  return null;
}

function rng(seed) {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

test('random schedules converge, never reuse a key, and refuse replays', () => {
  for (let seed = 1; seed <= 120; seed++) {
    const pick = rng(seed);
    const states = start();
    const flight = [];
    const opened = [];
    const used = new Set();
    let count = 0;
    for (let step = 0; step < 60; step++) {
      const action = pick(4);
      if (action === 0) {
        const sender = pick(2);
        if (sender === 1 && states[1].remote === null) continue;
        count += 1;
        const text = new TextEncoder().encode(`m${count}`);
        const { state, header, ciphertext } = ratchetEncrypt(states[sender], text, CTX, { fresh: fresh(), nonce: fresh().subarray(8) });
        states[sender] = state;
        const name = `${sender}:${toHex(header.ratchetKey)}:${header.n}`;
        assert.ok(!used.has(name), `seed ${seed}: a message key named twice`);
        used.add(name);
        flight.push({ to: 1 - sender, header, ciphertext, text });
      } else if ((action === 1 || action === 2) && flight.length) {
        const [m] = flight.splice(pick(flight.length), 1);
        if (action === 1) {
          const { state, plaintext } = ratchetDecrypt(states[m.to], m.header, m.ciphertext, CTX);
          assert.deepEqual(plaintext, m.text, `seed ${seed}`);
          states[m.to] = state;
          opened.push(m);
        }
      } else if (action === 3 && opened.length) {
        const m = opened[pick(opened.length)];
        const code = codeOf(() => ratchetDecrypt(states[m.to], m.header, m.ciphertext, CTX));
        assert.ok(code === 'ratchet.key_used' || code === 'seal.decrypt_failed', `seed ${seed}: replay gave ${code}`);
      }
    }
    for (const m of flight.reverse()) {
      const { state, plaintext } = ratchetDecrypt(states[m.to], m.header, m.ciphertext, CTX);
      assert.deepEqual(plaintext, m.text, `seed ${seed}: late delivery`);
      states[m.to] = state;
    }
  }
});

test('more than 100 skipped in one chain is ratchet.too_far_ahead, and changes nothing', () => {
  let [a, b] = start();
  const sent = [];
  for (let i = 0; i < MAX_SKIP + 2; i++) {
    const r = ratchetEncrypt(a, new Uint8Array([i]), CTX, { fresh: fresh(), nonce: fresh().subarray(8) });
    a = r.state;
    sent.push(r);
  }
  const last = sent[sent.length - 1];
  assert.equal(codeOf(() => ratchetDecrypt(b, last.header, last.ciphertext, CTX)), 'ratchet.too_far_ahead');
  const prev = sent[sent.length - 2];
  b = ratchetDecrypt(b, prev.header, prev.ciphertext, CTX).state;
  assert.equal(b.skipped.length, MAX_SKIP);
});

test('a send repeated from a rolled-back state carries a new nonce, so no keystream is reused (spec §14.4)', () => {
  const [a, b] = start();
  const same = fresh();
  const one = ratchetEncrypt(a, new Uint8Array(40).fill(0x61), CTX, { fresh: same, nonce: fresh().subarray(8) });
  const two = ratchetEncrypt(a, new Uint8Array(40).fill(0x62), CTX, { fresh: same, nonce: fresh().subarray(8) });
  assert.equal(toHex(one.header.ratchetKey), toHex(two.header.ratchetKey));
  assert.notEqual(toHex(one.ciphertext.subarray(0, 24)), toHex(two.ciphertext.subarray(0, 24)));
  const xor = one.ciphertext.subarray(24, 64).map((x, i) => x ^ two.ciphertext[24 + i]);
  assert.notEqual(toHex(xor), toHex(new Uint8Array(40).fill(0x61 ^ 0x62)));
  assert.equal(ratchetDecrypt(b, two.header, two.ciphertext, CTX).plaintext[0], 0x62);
  assert.throws(() => ratchetEncrypt(a, new Uint8Array(1), CTX, { fresh: same, nonce: new Uint8Array(12) }));
});

test('no state keeps its ratchet secret past a DH step: the responder drops its signed pre-key (spec §14.3 step 4)', () => {
  let [a, b] = start();
  const one = ratchetEncrypt(a, new Uint8Array([1]), CTX, { fresh: fresh(), nonce: fresh().subarray(8) });
  a = one.state;
  assert.equal(toHex(b.own), toHex(PREKEY));
  b = ratchetDecrypt(b, one.header, one.ciphertext, CTX).state;
  assert.equal(b.own, null);
  const two = ratchetEncrypt(b, new Uint8Array([2]), CTX, { fresh: fresh(), nonce: fresh().subarray(8) });
  a = ratchetDecrypt(a, two.header, two.ciphertext, CTX).state;
  assert.equal(a.own, null);
});

test('a session is kept only when the connection rules take its first message (spec §14.5 steps 8-9)', async () => {
  const { acceptOpened2, encryptionPublic, identityFromSeed, initiateSession, openSealed2, seal2, sign } = await import('../src/protocol/index.js');
  const NOW = 1_800_000_000;
  const times = { createdAt: NOW, expiresAt: NOW + 86400 };
  const ana = identityFromSeed(new Uint8Array(32).fill(1));
  const ben = identityFromSeed(new Uint8Array(32).fill(2));
  const [anaKey, benKey, benPre] = [0x41, 0x42, 0x82].map((b) => new Uint8Array(32).fill(b));
  const conn = new Uint8Array(16).fill(3);
  const bundle = sign(ana.seed, 'key-bundle', [encryptionPublic(anaKey), null, null], times).raw;
  const reach = sign(ana.seed, 'reach-out', [ben.publicKey, conn, new Uint8Array(32), 'Hello', null, bundle], times);
  const chat = sign(ana.seed, 'message', [ben.publicKey, conn, 1, null, 'hi'], times);
  const open = (data) => openSealed2(data, {
    recipient: ben.publicKey, secrets: [benKey], signedPrekeys: [benPre], sessions: new Map(), now: NOW,
  });
  const benBundle = sign(ben.seed, 'key-bundle', [encryptionPublic(benKey), null, null, encryptionPublic(benPre)], times);
  const start = () => initiateSession(benBundle, conn, null, { seed: ana.seed, now: NOW });
  const plain = sign(ben.seed, 'key-bundle', [encryptionPublic(benKey), null, null], times);
  assert.throws(() => initiateSession(plain, conn, null, { seed: ana.seed, now: NOW }), /no signed pre-key/);
  assert.throws(() => initiateSession(benBundle, conn, null, { seed: ana.seed, now: NOW + 86400 }), /expired/);
  const stray = open(seal2(chat, start(), encryptionPublic(benKey)).sealed.raw);
  assert.equal(stray.started, true);
  assert.equal(codeOf(() => acceptOpened2(stray, null)), 'ratchet.no_session');
  const opened = open(seal2(reach, start(), encryptionPublic(benKey)).sealed.raw);
  const { connection, session } = acceptOpened2(opened, null);
  assert.equal(toHex(connection.reacher), toHex(ana.publicKey));
  assert.equal(toHex(session.peer), toHex(ana.publicKey));
  assert.equal(codeOf(() => acceptOpened2(stray, connection)), 'ratchet.no_session');
});
