// Taking the identity over on this page (spec §9.5, R-9.5-5 and R-9.5-6; §14.6, Taking the
// identity back): messages are numbered from the take-over's floor on, on every connection, and
// that floor survives a reload; "Move it back" also marks every scheme-2 session stale: it still
// opens what it can, but the next message goes with scheme 1, so a conversation another device
// moved on meanwhile goes on with scheme 1 instead of sticking. The
// node is a stand-in `fetch` that records what is sent; secrets live in memory stores.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  aeadEncrypt, concat, encryptionPublic, identityFromSeed, NONCE_BYTES, pack, parseSealed, randomBytes, sign,
  SCHEME_V1, SCHEME_V2,
} from '../src/protocol/index.js';
import { Secrets } from '../src/app/sessions.js';
import { Talk } from '../src/app/talk.js';
import { memory, NODE, now } from './memory.js';
import { openState, sealState, SEQ_EPOCH, seqFloor, seqToSend, stateKey } from '../src/app/talk_state.js';


// One device of one identity: a Talk over `keys` whose secrets live in a memory store.
async function device(keys, bundle) {
  const secrets = await new Secrets(keys.seed, memory()).load();
  const ctx = { url: NODE, keys, token: 't'.repeat(43), bundle, now, doc: { limits: new Map([['first-contact-work-bits', 0]]) } };
  const talk = new Talk(ctx);
  talk.secrets = secrets;
  return { talk, secrets };
}

async function identity(name) {
  const keys = { seed: randomBytes(32), encryption: [{ secret: randomBytes(32), createdAt: now(), expiresAt: now() + 86_400 * 60 }] };
  const first = await device(keys, null);
  const body = [encryptionPublic(keys.encryption[0].secret), NODE, name, await first.secrets.signedPrekey(now() + 86_400 * 30, now())];
  const bundle = sign(keys.seed, 'key-bundle', body, { createdAt: now(), expiresAt: now() + 86_400 * 30 });
  first.talk.ctx.bundle = bundle.raw;
  return { keys, bundle, id: identityFromSeed(keys.seed).publicKey, ...first };
}

function node() {
  const sent = [];
  globalThis.fetch = async (url, { body }) => {
    if (new URL(url).pathname === '/api/v1/send') sent.push(new Uint8Array(body));
    const answer = new URL(url).pathname === '/api/v1/prekeys/claim' ? { prekey: null } : {};
    return new Response(JSON.stringify(answer), { status: 200, headers: { 'Content-Type': 'application/json' } });
  };
  return sent;
}

const scheme = (raw) => parseSealed(raw).payload[0];

// Rio reached out to Ana's offer and Ana accepted, on scheme 2: each side's conversation.
async function connected(rio, ana, sent) {
  const c = await rio.talk.reachOut({ author: ana.id, idBytes: randomBytes(32), keyBundle: ana.bundle.raw, topics: ['nights'] }, 'Hello.');
  ana.talk.receive(sent.at(-1), null);
  const theirs = ana.talk.conversations.get(c.id);
  await ana.talk.respond(theirs, true, null);
  rio.talk.receive(sent.at(-1), null);
  return { c, theirs };
}
const seqs = (c, mine) => c.messages.filter((m) => m.mine === mine).map((m) => m.seq);

test('the floor is the take-over time less 1,700,000,000 s, unless the conversation already went past it', () => {
  assert.equal(SEQ_EPOCH, 1_700_000_000);
  assert.equal(seqFloor(1_800_000_000), 100_000_000);
  assert.equal(seqFloor(SEQ_EPOCH + 7), 7);
  assert.equal(seqFloor(SEQ_EPOCH - 5), 1); // a clock before the epoch still gives a valid seq
  assert.equal(seqToSend({ nextSeq: 4 }, 0), 4); // never taken over: the next seq as before
  assert.equal(seqToSend({ nextSeq: 4 }, 100_000_000), 100_000_000);
  assert.equal(seqToSend({ nextSeq: 100_000_009 }, 100_000_000), 100_000_009); // highest seq + 1 when larger
  assert.equal(seqToSend({}, 12), 12); // a conversation taken in after the take-over honours it too
  // Two take-overs: the earlier device's numbers stay below the later one's unless it sent more
  // messages on one connection than seconds passed between the two.
  const first = seqFloor(1_800_000_000);
  const second = seqFloor(1_800_000_000 + 30);
  assert.ok(first + 29 < second);
});

test('the floor is kept with the conversations, and a state stored before it opens with none', async () => {
  const rio = await identity('Rio');
  await rio.talk.tookOver(1_800_000_000);
  assert.equal(rio.talk.seqFloor, 100_000_000);
  await rio.talk.tookOver(1_700_000_100); // an earlier clock never lowers it
  assert.equal(rio.talk.seqFloor, 100_000_000);
  const key = stateKey(rio.keys.seed);
  const back = { me: rio.id, blocked: new Set(), conversations: new Map() };
  openState(back, key, sealState(rio.talk, key));
  assert.equal(back.seqFloor, 100_000_000);
  // The three-field record the page wrote before this change.
  const nonce = randomBytes(NONCE_BYTES);
  const old = concat(nonce, aeadEncrypt(key, nonce, pack([1, [], []]), new TextEncoder().encode('peerfed/web/talk-state/v1')));
  const older = { me: rio.id, blocked: new Set(), conversations: new Map() };
  openState(older, key, old);
  assert.equal(older.seqFloor, 0);
});

test('moved back after another device went on: no seq twice, scheme 1 on both sides, and talking goes on', async () => {
  const sent = node();
  const rio = await identity('Rio'); // the page
  const ana = await identity('Ana');
  const { c, theirs } = await connected(rio, ana, sent);
  await rio.talk.send(c, 'From the page, before the move.');
  ana.talk.receive(sent.at(-1), null);
  assert.deepEqual(seqs(c, true), [1]);

  // The page's backup opens on another device at T1 (secrets and conversations as a backup carries them).
  const t1 = now();
  const other = await device(rio.keys, rio.bundle.raw);
  other.secrets.takeBackup(rio.secrets.backupMeta());
  const key = stateKey(rio.keys.seed);
  openState(other.talk, key, sealState(rio.talk, key));
  other.talk.seqFloor = seqFloor(t1);
  const there = other.talk.conversations.get(c.id);
  await other.talk.send(there, 'From the other device.');
  await other.talk.send(there, 'And once more.');
  assert.deepEqual(sent.slice(-2).map(scheme), [SCHEME_V2, SCHEME_V2]);
  for (const raw of sent.slice(-2)) ana.talk.receive(raw, null);
  await ana.talk.send(theirs, 'Answered to the other device.');
  other.talk.receive(sent.at(-1), null);
  assert.deepEqual(seqs(theirs, false), [1, seqFloor(t1), seqFloor(t1) + 1]); // the ratchet moved on there
  assert.equal(there.messages.at(-1).text, 'Answered to the other device.');

  // The page moves the identity back at T2, later: the floor, and every session marked stale.
  assert.ok(rio.secrets.sessions.has(c.id));
  await rio.talk.tookOver(t1 + 2, { sessions: true });
  assert.ok(rio.secrets.sessions.has(c.id) && rio.secrets.stale.has(c.id));
  assert.ok((await new Secrets(rio.keys.seed, rio.secrets.store).load()).stale.has(c.id)); // stored so
  await rio.talk.send(c, 'Back on the page now.');
  assert.equal(scheme(sent.at(-1)), SCHEME_V1);
  assert.ok(!rio.secrets.sessions.has(c.id) && !rio.secrets.stale.has(c.id)); // it went with that message
  assert.equal(c.messages.at(-1).seq, seqFloor(t1 + 2));
  ana.talk.receive(sent.at(-1), null);
  assert.equal(theirs.messages.at(-1).text, 'Back on the page now.'); // taken, not refused as a duplicate
  assert.ok(!ana.secrets.sessions.has(c.id)); // R-14.5-2: Ana follows to scheme 1
  await ana.talk.send(theirs, 'Back in the browser.');
  assert.equal(scheme(sent.at(-1)), SCHEME_V1);
  rio.talk.receive(sent.at(-1), null);
  assert.equal(c.messages.at(-1).text, 'Back in the browser.');
  await rio.talk.send(c, 'And on.');
  assert.equal(c.messages.at(-1).seq, seqFloor(t1 + 2) + 1);
});

test('a take-over that brings a backup in keeps the sessions it brought: only the floor comes with it', async () => {
  node();
  const rio = await identity('Rio');
  const ana = await identity('Ana');
  const c = await rio.talk.reachOut({ author: ana.id, idBytes: randomBytes(32), keyBundle: ana.bundle.raw, topics: ['nights'] }, 'Hello.');
  const at = now();
  await rio.talk.tookOver(at);
  assert.ok(rio.secrets.sessions.has(c.id));
  assert.equal(rio.talk.seqFloor, seqFloor(at));
});

test('moved back when the other device never used a conversation: the stale session still opens what it can', async () => {
  const sent = node();
  const rio = await identity('Rio');
  const ana = await identity('Ana');
  const { c, theirs } = await connected(rio, ana, sent);
  await rio.talk.tookOver(now(), { sessions: true });
  // Ana writes before the page does: sealed to the state the page still holds, and it opens.
  await ana.talk.send(theirs, 'Are you back?');
  assert.equal(scheme(sent.at(-1)), SCHEME_V2);
  rio.talk.receive(sent.at(-1), null);
  assert.equal(c.messages.at(-1).text, 'Are you back?');
  assert.ok(rio.secrets.stale.has(c.id)); // opening does not clear the mark: only writing does
  await rio.talk.send(c, 'I am.');
  assert.equal(scheme(sent.at(-1)), SCHEME_V1);
  ana.talk.receive(sent.at(-1), null);
  assert.equal(theirs.messages.at(-1).text, 'I am.');
  assert.ok(!ana.secrets.sessions.has(c.id));
});

test('a backup carries the stale marks, as the CLI writes them', async () => {
  node();
  const rio = await identity('Rio');
  const ana = await identity('Ana');
  const c = await rio.talk.reachOut({ author: ana.id, idBytes: randomBytes(32), keyBundle: ana.bundle.raw, topics: ['nights'] }, 'Hello.');
  await rio.talk.tookOver(now(), { sessions: true });
  const meta = rio.secrets.backupMeta();
  assert.deepEqual(meta.filter(([key]) => key.startsWith('stale ')), [['stale ' + c.id, 1]]);
  const other = new Secrets(rio.keys.seed, memory());
  other.takeBackup(meta);
  assert.ok(other.sessions.has(c.id) && other.stale.has(c.id));
});
