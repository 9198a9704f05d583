// Terms that forget (spec §8.3, §9.7) on this device: shown with the terms, in force only once both
// signed, and then every message sent `forget` seconds ago or more is dropped from the
// conversation, from its signed history and from the sealed state at rest, while the next seq to
// send is kept so no seq is ever used twice.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection, encryptionPublic, identityFromSeed, randomBytes, sign, toHex } from '../src/protocol/index.js';
import { agreementItems, termsFromForm, termsState } from '../src/app/terms.js';
import { Talk } from '../src/app/talk.js';
import { forgetDue, keepForgetting, openState, rebuild, sealState, stateKey } from '../src/app/talk_state.js';

const NOW = 1_800_000_000;
const TWO_HOURS = 7200;

function person() {
  const seed = randomBytes(32);
  return { seed, id: identityFromSeed(seed).publicKey, key: encryptionPublic(randomBytes(32)) };
}

const at = (createdAt) => ({ createdAt, expiresAt: createdAt + 86_400 });

// Rio reached out to Ana, who accepted; Rio proposed `terms` and, when `agree`, Ana countersigned;
// then Rio sent messages 1 and 2 and Ana message 1, each at its own second before NOW.
function history(terms, agree = true) {
  const [rio, ana] = [person(), person()];
  const c = randomBytes(16);
  const bundle = sign(rio.seed, 'key-bundle', [rio.key, 'https://a.example', null], at(NOW - 1000)).raw;
  const envs = [
    sign(rio.seed, 'reach-out', [ana.id, c, randomBytes(32), 'Hello', null, bundle], at(NOW - 900)),
    sign(ana.seed, 'response', [rio.id, c, true, null], at(NOW - 800)),
    sign(rio.seed, 'agreement', [ana.id, c, 1, terms], at(NOW - 700)),
  ];
  if (agree) envs.push(sign(ana.seed, 'agreement', [rio.id, c, 1, terms], at(NOW - 600)));
  envs.push(
    sign(rio.seed, 'message', [ana.id, c, 1, null, 'rio one'], at(NOW - 300)),
    sign(ana.seed, 'message', [rio.id, c, 1, null, 'ana one'], at(NOW - 200)),
    sign(rio.seed, 'message', [ana.id, c, 2, null, 'rio two'], at(NOW - 100)),
  );
  let state = Connection.start(envs[0]);
  for (const env of envs.slice(1)) state = state.apply(env); // every step is one the machine takes
  const row = (me, other, mine) => [toHex(c), mine, other.id, other.key, null, null, null, 0, false, null, state.state, envs.map((e) => e.raw)];
  return { rio, ana, onRio: rebuild(rio.id, row(rio, ana, true)), onAna: rebuild(ana.id, row(ana, rio, false)) };
}

test('terms in force that forget drop each message once its time comes, on both sides', () => {
  const terms = termsFromForm({ helps: 'Evenings', forget: TWO_HOURS });
  assert.equal(terms.length, 7);
  assert.equal(termsFromForm({ helps: 'Evenings' }).length, 6); // without it, the six items as before
  const { onRio, onAna } = history(terms);
  for (const c of [onRio, onAna]) {
    assert.equal(termsState(c, NOW).inForce.terms.forget, TWO_HOURS);
    assert.equal(forgetDue(c, NOW), false);
    assert.equal(forgetDue(c, NOW - 300 + TWO_HOURS - 1), false); // one second early
    assert.equal(forgetDue(c, NOW - 300 + TWO_HOURS), true); // rio's first goes, exactly on time
    assert.deepEqual(c.messages.map((m) => m.text), ['ana one', 'rio two']);
    assert.equal(c.events.length, 6);
    assert.equal(forgetDue(c, NOW + TWO_HOURS), true);
    assert.deepEqual(c.messages, []);
    assert.equal(c.events.length, 4); // reach-out, response, both agreements: what the connection is
    assert.equal(c.state.state, 'agreed');
  }
  assert.equal(onRio.nextSeq, 3);
});

test('the sealed state keeps the next seq and none of the forgotten words', () => {
  const { rio, onRio } = history(termsFromForm({ helps: 'Evenings', forget: TWO_HOURS }));
  forgetDue(onRio, NOW + TWO_HOURS);
  const key = stateKey(rio.seed);
  const talk = { me: rio.id, blocked: new Set(), conversations: new Map([[onRio.id, onRio]]) };
  const sealed = sealState(talk, key);
  const back = { me: rio.id, blocked: new Set(), conversations: new Map() };
  openState(back, key, sealed);
  const c = back.conversations.get(onRio.id);
  assert.equal(c.nextSeq, 3); // seq 1 and 2 were used, though no message says so any more
  assert.deepEqual(c.messages, []);
  assert.equal(c.state.inForce.terms.forget, TWO_HOURS);
  assert.equal(c.hello, 'Hello');
  const words = ['rio one', 'ana one', 'rio two'];
  assert.ok(!c.events.some((raw) => words.some((w) => Buffer.from(raw).includes(w))));
});

test('a proposal nobody countersigned, and terms without forget, delete nothing', () => {
  const proposed = history(termsFromForm({ helps: 'Evenings', forget: TWO_HOURS }), false);
  assert.equal(termsState(proposed.onAna, NOW).proposal.terms.forget, TWO_HOURS);
  assert.equal(termsState(proposed.onAna, NOW).inForce, null);
  assert.equal(forgetDue(proposed.onAna, NOW + 365 * 86_400), false);
  // Countersigning keeps the promise word for word: the same seven items.
  assert.deepEqual(agreementItems(proposed.onAna, null, NOW)[1], termsFromForm({ helps: 'Evenings', forget: TWO_HOURS }));
  const kept = history(termsFromForm({ helps: 'Evenings' }));
  assert.equal(forgetDue(kept.onAna, NOW + 365 * 86_400), false);
  assert.equal(kept.onAna.messages.length, 3);
});

test('while a screen is open, a message whose time came leaves it without any input, and the timer stops on leaving', () => {
  const { rio, onRio } = history(termsFromForm({ helps: 'Evenings', forget: TWO_HOURS }));
  let clock = NOW;
  const talk = new Talk({ keys: { seed: rio.seed, encryption: [] }, now: () => clock });
  talk.conversations.set(onRio.id, onRio);
  const told = [];
  talk.watch((c) => told.push(c));
  // A stand-in for the browser's timers: the test runs each tick itself, no waiting.
  const timers = {
    running: new Map(),
    setInterval(fn, ms) {
      this.running.set(1, { fn, ms });
      return 1;
    },
    clearInterval(id) {
      this.running.delete(id);
    },
  };
  const stop = keepForgetting(talk, { timers });
  const [{ fn, ms }] = timers.running.values();
  assert.equal(ms, 60_000); // checked once a minute
  fn();
  assert.deepEqual(told, []); // nothing due yet: the screen is not redrawn
  clock = NOW - 300 + TWO_HOURS; // rio's first message is two hours old
  fn();
  assert.deepEqual(told, [onRio]); // the open screen is told, and redraws without it
  assert.deepEqual(onRio.messages.map((m) => m.text), ['ana one', 'rio two']);
  clock = NOW + TWO_HOURS;
  fn();
  assert.deepEqual(onRio.messages, []);
  assert.equal(told.length, 2);
  stop(); // leaving the screen or locking
  assert.equal(timers.running.size, 0);
});
