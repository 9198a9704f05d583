// Terms in a conversation (spec §8.3, §9.2, §9.3) as the browser shows and answers them: what was
// proposed and by whom, countersigning identical terms, a counter-proposal as the next round, two
// different terms in one round left unresolved, an out-of-turn version refused, and lapsed terms
// that stay in force.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection, encryptionPublic, identityFromSeed, randomBytes, sign } from '../src/protocol/index.js';
import { agreementItems, forgetChoices, forgetFromChoice, termsFromForm, termsState, untilFromDate } from '../src/app/terms.js';

const NOW = 1_800_000_000;
const at = { createdAt: NOW - 100, expiresAt: NOW + 86_400 };

function person() {
  const seed = randomBytes(32);
  const secret = randomBytes(32);
  return { seed, id: identityFromSeed(seed).publicKey, key: encryptionPublic(secret) };
}

// Rio reached out to Ana, who accepted; each test applies agreements to both sides' states.
function accepted() {
  const [rio, ana] = [person(), person()];
  const c = randomBytes(16);
  const bundle = sign(rio.seed, 'key-bundle', [rio.key, 'https://a.example', null], at).raw;
  const reach = sign(rio.seed, 'reach-out', [ana.id, c, randomBytes(32), 'Hello', null, bundle], at);
  const state = Connection.start(reach).apply(sign(ana.seed, 'response', [rio.id, c, true, null], at));
  return { rio, ana, c, mineR: { mine: true, state }, mineA: { mine: false, state } };
}

let tick = 0; // each agreement signed at its own second, so none repeats another's id
function send(s, from, to, items, ...sides) {
  tick += 1;
  const env = sign(from.seed, 'agreement', [to.id, s.c, ...items], { createdAt: NOW - 50 + tick, expiresAt: NOW + 86_400 });
  for (const side of sides) side.state = side.state.apply(env);
}

const helps = termsFromForm({ helps: ' Listening, no advice. ', formats: ['text', 'text'], boundaries: ['No calls', '', 'No calls'], until: NOW + 3600 });

test('a proposal is shown with who made it, then countersigned into force on both sides', () => {
  const s = accepted();
  assert.deepEqual(helps, ['Listening, no advice.', ['text'], null, NOW + 3600, ['No calls'], null]);
  assert.throws(() => agreementItems(s.mineA, null, NOW), (e) => e.code === 'local.not_allowed');
  send(s, s.rio, s.ana, agreementItems(s.mineR, helps, NOW), s.mineR, s.mineA);
  const seenByAna = termsState(s.mineA, NOW);
  assert.equal(seenByAna.proposal.by, 'them');
  assert.equal(termsState(s.mineR, NOW).proposal.by, 'me');
  assert.equal(seenByAna.proposal.terms.helps, 'Listening, no advice.');
  assert.equal(seenByAna.proposal.terms.until, NOW + 3600);
  assert.equal(seenByAna.inForce, null);
  // Rio cannot countersign his own proposal; Ana can, with the same version and identical terms.
  assert.throws(() => agreementItems(s.mineR, null, NOW), (e) => e.code === 'local.not_allowed');
  send(s, s.ana, s.rio, agreementItems(s.mineA, null, NOW), s.mineR, s.mineA);
  for (const side of [s.mineR, s.mineA]) {
    const seen = termsState(side, NOW);
    assert.equal(side.state.state, 'agreed');
    assert.equal(seen.inForce.version, 1);
    assert.equal(seen.inForce.lapsed, false);
    assert.equal(seen.proposal, null);
  }
  // Past `until` the terms stay in force and the state stays agreed; they only show as lapsed (§9.2).
  const later = termsState(s.mineA, NOW + 7200);
  assert.equal(later.inForce.lapsed, true);
  assert.equal(later.inForce.version, 1);
  // Renewing is a new round.
  assert.deepEqual(agreementItems(s.mineA, termsFromForm({ helps: 'Again' }), NOW + 7200)[0], 2);
});

test('other terms are a new round; identical ones countersign; different ones in one round stay unresolved', () => {
  const s = accepted();
  send(s, s.rio, s.ana, agreementItems(s.mineR, helps, NOW), s.mineR, s.mineA);
  const other = termsFromForm({ helps: 'Just company' });
  const counter = agreementItems(s.mineA, other, NOW);
  assert.equal(counter[0], 2); // proposing others starts round 2
  assert.equal(agreementItems(s.mineA, helps, NOW)[0], 1); // typing the same terms countersigns
  send(s, s.ana, s.rio, counter, s.mineR, s.mineA);
  assert.equal(termsState(s.mineR, NOW).proposal.by, 'them');
  assert.equal(termsState(s.mineR, NOW).proposal.terms.helps, 'Just company');
  // An agreement out of turn (version 1 again, or 4) is refused and changes nothing.
  assert.throws(() => send(s, s.rio, s.ana, [1, helps], s.mineA), (e) => e.code === 'connection.not_allowed');
  assert.throws(() => send(s, s.rio, s.ana, [4, helps], s.mineA), (e) => e.code === 'connection.not_allowed');
  assert.equal(termsState(s.mineA, NOW).round, 2);
  // Rio signs round 2 with different terms: unresolved, nothing in force, either proposes round 3.
  send(s, s.rio, s.ana, [2, helps], s.mineR, s.mineA);
  const seen = termsState(s.mineA, NOW);
  assert.equal(seen.unresolved, true);
  assert.equal(seen.inForce, null);
  assert.equal(seen.proposal, null);
  assert.equal(agreementItems(s.mineA, other, NOW)[0], 3);
});

test('an end date is the last second of that day, UTC, as the CLI reads it', () => {
  assert.equal(untilFromDate('2027-02-01'), Date.UTC(2027, 1, 1, 23, 59, 59) / 1000);
  assert.equal(untilFromDate(''), null);
  assert.throws(() => untilFromDate('tomorrow'), (e) => e.code === 'local.usage');
});

test('the form\'s "deleting messages" choice becomes the seventh item, as `peerfed agree --forget 30d` (spec §8.3, §9.7)', () => {
  // The choices: keep (no forget), then 1, 7, 30 and 365 days; terms being changed keep their own value.
  assert.deepEqual(forgetChoices(), [86_400, 604_800, 2_592_000, 31_536_000]);
  assert.deepEqual(forgetChoices(2_592_000), [86_400, 604_800, 2_592_000, 31_536_000]);
  assert.deepEqual(forgetChoices(3 * 3600), [3 * 3600, 86_400, 604_800, 2_592_000, 31_536_000]);
  // "Keep the messages" is the six items they always were; a choice adds `forget` in seconds.
  assert.equal(forgetFromChoice(''), null);
  assert.deepEqual(termsFromForm({ helps: 'Evenings', forget: forgetFromChoice('') }), ['Evenings', [], null, null, [], null]);
  const proposed = termsFromForm({ helps: 'Evenings', formats: ['text'], forget: forgetFromChoice('2592000') });
  assert.deepEqual(proposed, ['Evenings', ['text'], null, null, [], null, 2_592_000]);
  // The other side reads it as the CLI does, and agreeing to it keeps it word for word.
  const s = accepted();
  send(s, s.rio, s.ana, agreementItems(s.mineR, proposed, NOW), s.mineR, s.mineA);
  assert.equal(termsState(s.mineA, NOW).proposal.terms.forget, 2_592_000);
  send(s, s.ana, s.rio, agreementItems(s.mineA, null, NOW), s.mineR, s.mineA);
  assert.equal(termsState(s.mineR, NOW).inForce.terms.forget, 2_592_000);
  // Outside 1 hour…365 days (a changed page, a typo) is refused before anything is signed.
  for (const bad of ['3599', '31536001', '1.5', 'soon']) {
    assert.throws(() => forgetFromChoice(bad), (e) => e.code === 'local.usage');
  }
});
