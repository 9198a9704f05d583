// Two in-memory page peers (spec §14.7): which scheme each message takes, and when a session
// starts, is kept and ends. The node is a stand-in `fetch` that records what is sent and hands out
// one-time pre-keys; the pre-key secrets and sessions live in a memory store.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  encryptionPublic, identityFromSeed, parseSealed, peerIdText, randomBytes, sign, SCHEME_V1, SCHEME_V2, toHex, x25519Public,
} from '../src/protocol/index.js';
import { Secrets } from '../src/app/sessions.js';
import { Talk } from '../src/app/talk.js';
import { memory, NODE, now } from './memory.js';


// One page peer: its keyring, its sealed-secret store, and a bundle with (or without) a signed pre-key.
async function peer(name, { prekey = true } = {}) {
  const keys = { seed: randomBytes(32), encryption: [{ secret: randomBytes(32), createdAt: now(), expiresAt: now() + 86_400 * 60 }] };
  const secrets = await new Secrets(keys.seed, memory()).load();
  const body = [encryptionPublic(keys.encryption[0].secret), NODE, name];
  if (prekey) body.push(await secrets.signedPrekey(now() + 86_400 * 30, now()));
  const bundle = sign(keys.seed, 'key-bundle', body, { createdAt: now(), expiresAt: now() + 86_400 * 30 });
  const ctx = { url: NODE, keys, token: 't'.repeat(43), bundle: bundle.raw, now, doc: { limits: new Map([['first-contact-work-bits', 0]]) } };
  const talk = new Talk(ctx);
  talk.secrets = secrets;
  return { talk, secrets, bundle, id: identityFromSeed(keys.seed).publicKey };
}

// The node: every sealed message sent, in order, and a stock of one-time pre-keys per peer.
function node(stock = new Map()) {
  const sent = [];
  globalThis.fetch = async (url, { body }) => {
    const path = new URL(url).pathname;
    let answer = {};
    if (path === '/api/v1/send') sent.push(new Uint8Array(body));
    if (path === '/api/v1/prekeys/claim') {
      const key = (stock.get(JSON.parse(body).peer) ?? []).shift();
      answer = { prekey: key ? Buffer.from(key).toString('base64') : null };
    }
    return new Response(JSON.stringify(answer), { status: 200, headers: { 'Content-Type': 'application/json' } });
  };
  return sent;
}

const scheme = (raw) => parseSealed(raw).payload[0];
const listingOf = (author, bundle) => ({ author: author.id, idBytes: randomBytes(32), keyBundle: bundle.raw, topics: ['nights'] });

test('a reach-out to a bundle with a signed pre-key starts a session with a claimed one-time pre-key', async () => {
  const rio = await peer('Rio');
  const ana = await peer('Ana');
  const oneTime = randomBytes(32);
  ana.secrets.oneTime.push(oneTime);
  const sent = node(new Map([[peerIdText(ana.id), [x25519Public(oneTime)]]]));
  const c = await rio.talk.reachOut(listingOf(ana, ana.bundle), 'Hello.');
  assert.equal(scheme(sent[0]), SCHEME_V2);
  assert.ok(rio.secrets.sessions.has(c.id));
  ana.talk.receive(sent[0], null);
  const theirs = ana.talk.conversations.get(c.id);
  assert.equal(theirs.hello, 'Hello.');
  assert.ok(ana.secrets.sessions.has(c.id));
  assert.deepEqual(ana.secrets.oneTime, []); // used, so deleted once the reach-out was taken
  await ana.talk.respond(theirs, true, 'Yes.');
  assert.equal(scheme(sent[1]), SCHEME_V2);
  rio.talk.receive(sent[1], null);
  assert.equal(c.state.state, 'accepted');
  await rio.talk.send(c, 'Thank you.');
  assert.equal(scheme(sent[2]), SCHEME_V2);
  ana.talk.receive(sent[2], null);
  assert.equal(theirs.messages[0].text, 'Thank you.');
  // Ending drops the session at both ends.
  await ana.talk.end(theirs, false);
  rio.talk.receive(sent[3], null);
  assert.equal(c.state.state, 'ended');
  assert.ok(!rio.secrets.sessions.has(c.id) && !ana.secrets.sessions.has(c.id));
});

test("the author's response to a reacher whose bundle has a signed pre-key starts the session", async () => {
  const rio = await peer('Rio');
  const ana = await peer('Ana', { prekey: false }); // an older bundle: the reach-out goes with scheme 1
  const sent = node(); // no one-time pre-keys: the signed pre-key alone starts it
  const c = await rio.talk.reachOut(listingOf(ana, ana.bundle), 'Hello.');
  assert.equal(scheme(sent[0]), SCHEME_V1);
  assert.ok(!rio.secrets.sessions.has(c.id));
  ana.talk.receive(sent[0], null);
  const theirs = ana.talk.conversations.get(c.id);
  await ana.talk.respond(theirs, true, null);
  assert.equal(scheme(sent[1]), SCHEME_V2);
  rio.talk.receive(sent[1], null);
  assert.equal(c.state.state, 'accepted');
  assert.ok(rio.secrets.sessions.has(c.id));
  await rio.talk.send(c, 'Hi.');
  await ana.talk.send(theirs, 'Hello back.');
  assert.deepEqual(sent.slice(2).map(scheme), [SCHEME_V2, SCHEME_V2]);
  ana.talk.receive(sent[2], null);
  rio.talk.receive(sent[3], null);
  const texts = (conversation) => conversation.messages.map((m) => `${m.mine ? 'me' : 'them'}: ${m.text}`).sort();
  assert.deepEqual(texts(theirs), ['me: Hello back.', 'them: Hi.']);
  assert.deepEqual(texts(c), ['me: Hi.', 'them: Hello back.']);
});

test('a scheme-1 message taken on a connection with a session ends the session (R-14.5-2)', async () => {
  const rio = await peer('Rio');
  const ana = await peer('Ana');
  const sent = node();
  const c = await rio.talk.reachOut(listingOf(ana, ana.bundle), 'Hello.');
  ana.talk.receive(sent[0], null);
  const theirs = ana.talk.conversations.get(c.id);
  await ana.talk.respond(theirs, true, null);
  rio.talk.receive(sent[1], null);
  // Rio's device is restored from a backup: no session, so it writes with scheme 1.
  rio.secrets.sessions.clear();
  await rio.talk.send(c, 'From the restored device.');
  assert.equal(scheme(sent[2]), SCHEME_V1);
  ana.talk.receive(sent[2], null);
  assert.equal(theirs.messages[0].text, 'From the restored device.');
  assert.ok(!ana.secrets.sessions.has(c.id));
  await ana.talk.send(theirs, 'Still here.');
  assert.equal(scheme(sent[3]), SCHEME_V1);
});

test('a stored session opens again as it was kept', async () => {
  const seed = randomBytes(32);
  const store = memory();
  const rio = await peer('Rio');
  const ana = await peer('Ana');
  const sent = node();
  const c = await rio.talk.reachOut(listingOf(ana, ana.bundle), 'Hello.');
  const kept = new Secrets(seed, store);
  kept.sessions.set(c.id, rio.secrets.sessions.get(c.id));
  await kept.save();
  const again = await new Secrets(seed, store).load();
  assert.deepEqual(again.sessions.get(c.id), rio.secrets.sessions.get(c.id));
  assert.equal((await new Secrets(randomBytes(32), store).load()).sessions.size, 0); // another identity's: unopened
  assert.equal(toHex(parseSealed(sent[0]).mailbox), toHex(ana.id));
});
