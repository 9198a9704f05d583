// Topping up one-time pre-keys at each sync, as the CLI does (spec §13.5, §13.10 Scheme 2 in the
// page): not only at sign-in, but after the page takes an item that used one of its one-time
// pre-keys, and each time its live connection is (re)made; never two uploads at once. The node
// is a stand-in `fetch` that records every request, hands out one-time pre-keys and says its stock.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { encryptionPublic, identityFromSeed, openSigned, peerIdText, randomBytes, sign, x25519Public } from '../src/protocol/index.js';
import { openLive } from '../src/app/live.js';
import { Secrets, topUpFor } from '../src/app/sessions.js';
import { Talk } from '../src/app/talk.js';

const NODE = 'https://node.example';
const now = () => Math.floor(Date.now() / 1000);
const memory = () => {
  let held = null;
  return { load: async () => held, save: async (bytes) => { held = bytes; } };
};

async function peer(name) {
  const keys = { seed: randomBytes(32), encryption: [{ secret: randomBytes(32), createdAt: now(), expiresAt: now() + 86_400 * 60 }] };
  const secrets = await new Secrets(keys.seed, memory()).load();
  const body = [encryptionPublic(keys.encryption[0].secret), NODE, name, await secrets.signedPrekey(now() + 86_400 * 30, now())];
  const bundle = sign(keys.seed, 'key-bundle', body, { createdAt: now(), expiresAt: now() + 86_400 * 30 });
  const ctx = { url: NODE, keys, token: 't'.repeat(43), bundle: bundle.raw, now, doc: { limits: new Map([['first-contact-work-bits', 0]]) } };
  const talk = new Talk(ctx);
  talk.secrets = secrets;
  return { talk, secrets, bundle, id: identityFromSeed(keys.seed).publicKey };
}

// The node: one-time pre-keys to hand out per peer; a stock of `stock` (low mark 10, cap 100)
// until an upload fills it; every request as [method, path]; every sealed message sent.
function node({ claims = new Map(), stock = 3 } = {}) {
  const seen = { requests: [], sent: [], uploads: [] };
  let held = stock;
  globalThis.fetch = async (url, { method, body }) => {
    const path = new URL(url).pathname;
    seen.requests.push([method, path]);
    let answer = {};
    if (path === '/api/v1/send') seen.sent.push(new Uint8Array(body));
    if (path === '/api/v1/prekeys/claim') {
      const key = (claims.get(JSON.parse(body).peer) ?? []).shift();
      answer = { prekey: key ? Buffer.from(key).toString('base64') : null };
    }
    if (path === '/api/v1/prekeys' && method === 'GET') answer = { stock: held, cap: 100, low: 10 };
    if (path === '/api/v1/prekeys' && method === 'POST') {
      const upload = openSigned(new Uint8Array(body), { context: 'peerfed/v1/client-auth', now: now() });
      seen.uploads.push(upload.body);
      held += upload.body.keys.length;
    }
    return new Response(JSON.stringify(answer), { status: 200, headers: { 'Content-Type': 'application/json' } });
  };
  return seen;
}

const stockChecks = (seen) => seen.requests.filter(([method, path]) => method === 'GET' && path === '/api/v1/prekeys').length;

test('taking an item that used a one-time pre-key checks the stock at once and tops it up', async () => {
  const rio = await peer('Rio');
  const ana = await peer('Ana');
  const oneTime = randomBytes(32);
  ana.secrets.oneTime.push(oneTime);
  const seen = node({ claims: new Map([[peerIdText(ana.id), [x25519Public(oneTime)]]]) });
  const listing = { author: ana.id, idBytes: randomBytes(32), keyBundle: ana.bundle.raw, topics: ['nights'] };
  const c = await rio.talk.reachOut(listing, 'Hello.');
  assert.equal(stockChecks(seen), 0);
  ana.talk.receive(seen.sent[0], null); // the reach-out used Ana's one-time pre-key
  assert.deepEqual(ana.secrets.oneTime, []);
  assert.equal(stockChecks(seen), 1); // asked at once, not at the next sign-in
  assert.equal(await ana.secrets.topping, 97); // stock 3, cap 100: the rest went up
  assert.equal(seen.uploads.length, 1);
  assert.equal(ana.secrets.oneTime.length, 97); // each one's secret kept before the upload
  assert.deepEqual(seen.uploads[0].keys, ana.secrets.oneTime.map(x25519Public));
  // Mail that used none (Rio's answer to Ana's acceptance) does not ask again.
  const theirs = ana.talk.conversations.get(c.id);
  await ana.talk.respond(theirs, true, 'Yes.');
  rio.talk.receive(seen.sent[1], null);
  await rio.talk.send(c, 'Thank you.');
  ana.talk.receive(seen.sent[2], null);
  assert.equal(theirs.messages[0].text, 'Thank you.');
  assert.equal(stockChecks(seen), 1);
});

test('each time the live connection is (re)made the stock is checked, and two checks never both upload', async () => {
  const ana = await peer('Ana');
  const seen = node();
  // A stand-in WebSocket: the test says when the node answers `ready`.
  const sockets = [];
  globalThis.WebSocket = class {
    static OPEN = 1;
    constructor() {
      this.readyState = 1;
      sockets.push(this);
    }
    send() {}
    close() {}
  };
  const live = openLive(ana.talk, () => null);
  try {
    sockets[0].onmessage({ data: JSON.stringify({ type: 'ready' }) });
    assert.equal(stockChecks(seen), 1);
    // Asked again while that one runs (the sign-in's own top-up, say): it checks once more after.
    const again = topUpFor(ana.talk);
    assert.equal(await again, 97);
    assert.equal(stockChecks(seen), 2);
    assert.equal(seen.uploads.length, 1); // the second check found the stock full
    sockets[0].onmessage({ data: JSON.stringify({ type: 'ready' }) }); // reconnected
    assert.equal(await ana.secrets.topping, 0);
    assert.equal(stockChecks(seen), 3);
  } finally {
    live.stop();
  }
});
