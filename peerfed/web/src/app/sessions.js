// Scheme-2 secrets on this device (spec §14.1, §14.4, §14.7): the signed pre-key secrets its
// bundles name, the one-time pre-key secrets its node hands out, and each connection's session.
// One IndexedDB record, sealed with XChaCha20-Poly1305 under a key derived from the identity seed
// (itself sealed under the passphrase), as the conversations are:
//
//   pack([VERSION, [[secret, created_at, kept_until], ...], [secret, ...], [[connection, peer, ephemeral, state], ...]])
//
// A backup file carries them as the CLI's does (spec §9.6), so a person moving between the CLI and
// this page opens what was in flight to them: meta `prekeys` = pack([signed, one-time]) and one
// `ratchet <connection hex>` = pack(session) per connection, each sealed with backup.js sealSecret.

import {
  aeadDecrypt, aeadEncrypt, blake2b256, concat, equalBytes, isInt, NONCE_BYTES, openSecret, pack, person, randomBytes,
  sealSecret, sign, toHex, unpack, x25519Public,
} from '../protocol/index.js';
import { loadSecrets, saveSecrets } from './keystore.js';
import { call } from './node.js';

const VERSION = 1;
const AAD = new TextEncoder().encode('peerfed/web/prekeys/v1');
const DAY = 86_400;
const ROTATE_AFTER = 30 * DAY; // a new signed pre-key at least this often (spec §14.1), as the CLI's
const MAILBOX_WINDOW = 7 * DAY; // a signed secret outlives the last bundle naming it by this (§7.3)
const MAX_ONE_TIME = 500; // one-time secrets kept; the node hands out the oldest first
const MAX_UPLOAD = 100; // one-time pre-keys in one upload (spec §13.5)
const UPLOAD_LIFETIME = 300; // a prekeys upload is signed for at most 600 s (spec §13.5)

const STATE_FIELDS = ['root', 'own', 'remote', 'send', 'ns', 'pn', 'recv', 'nr', 'skipped', 'retired', 'agreement'];
const PREKEYS = 'prekeys'; // the CLI's meta keys in a backup (peerfed/client/prekeys.py, sessions.py)
const RATCHET = 'ratchet ';
const STALE = 'stale '; // a session that may be behind another device's (spec §14.6, R-9.5-6)

function secretsKey(seed) {
  return blake2b256(seed, person('peerfed/webkeys'));
}

const sessionRow = (s) => [s.connection, s.peer, s.ephemeral, STATE_FIELDS.map((f) => s.state[f])];

const isSecret = (v) => v instanceof Uint8Array && v.length === 32;
const optional = (v) => v === null || isSecret(v);

// A session row as the CLI's Session.to_wire makes it; the ratchet checks the rest as it runs.
function sessionShape(row) {
  if (!Array.isArray(row) || row.length !== 4) return false;
  const [connection, peer, ephemeral, fields] = row;
  if (!(connection instanceof Uint8Array && connection.length === 16) || !optional(peer) || !isSecret(ephemeral)) return false;
  if (!Array.isArray(fields) || fields.length !== STATE_FIELDS.length) return false;
  const [root, own, remote, send, ns, pn, recv, nr, skipped, retired, agreement] = fields;
  return isSecret(root) && [own, remote, send, recv].every(optional) && [ns, pn, nr].every((n) => typeof n === 'number' && n >= 0) &&
    Array.isArray(skipped) && skipped.every((k) => Array.isArray(k) && k.length === 3 && isSecret(k[0]) && typeof k[1] === 'number' && isSecret(k[2])) &&
    Array.isArray(retired) && retired.every(isSecret) && (agreement === null || (Array.isArray(agreement) && agreement.length === 6));
}

function sessionOf([connection, peer, ephemeral, fields]) {
  const state = {};
  STATE_FIELDS.forEach((f, i) => {
    state[f] = fields[i];
  });
  return { connection, peer, ephemeral, state };
}

/**
 * This device's pre-key secrets and sessions, held in memory while unlocked and kept sealed;
 * `store` ({ load, save } of sealed bytes) is IndexedDB's record unless a test gives another.
 * `deferred`: written only once `keep()` says the identity's keys are kept here, so a join that
 * fails leaves nothing behind (as keystore.js holds back the device id).
 */
export class Secrets {
  constructor(seed, store = { load: loadSecrets, save: saveSecrets }, { deferred = false } = {}) {
    this.store = store;
    this.deferred = deferred;
    this.seed = seed;
    this.key = secretsKey(seed);
    this.signed = []; // [{ secret, createdAt, keptUntil }], newest last
    this.oneTime = []; // secrets, oldest first
    this.sessions = new Map(); // connection id (hex) -> session (ratchet.js)
    this.stale = new Set(); // connection ids (hex) whose next message goes with scheme 1 (R-9.5-6)
    this.saving = Promise.resolve();
    this.topping = null; // the top-up running now (topUp)
    this.topAgain = false;
  }

  /** Fill from the stored record; one that does not open (another identity's, damaged) is left unused. */
  async load() {
    const bytes = await this.store.load().catch(() => null);
    if (!(bytes instanceof Uint8Array)) return this;
    try {
      const plain = aeadDecrypt(this.key, bytes.subarray(0, NONCE_BYTES), bytes.subarray(NONCE_BYTES), AAD);
      const [version, signed, oneTime, sessions, stale = []] = unpack(plain); // no 5th item before take-overs marked
      if (version !== VERSION) return this;
      this.signed = signed.map(([secret, createdAt, keptUntil]) => ({ secret, createdAt, keptUntil }));
      this.oneTime = oneTime;
      for (const row of sessions) this.sessions.set(toHex(row[0]), sessionOf(row));
      for (const hex of stale) if (this.sessions.has(hex)) this.stale.add(hex);
    } catch {
      // not ours: nothing opens, so scheme 1 goes on
    }
    return this;
  }

  /** Seal and keep everything after the saves before it; resolves once it is stored. */
  save() {
    const signed = this.signed.map((s) => [s.secret, s.createdAt, s.keptUntil]);
    const nonce = randomBytes(NONCE_BYTES);
    const plain = pack([VERSION, signed, [...this.oneTime], [...this.sessions.values()].map(sessionRow), [...this.stale]]);
    const bytes = concat(nonce, aeadEncrypt(this.key, nonce, plain, AAD));
    if (this.deferred) return this.saving;
    this.saving = this.saving.catch(() => {}).then(() => this.store.save(bytes)); // one failed write does not stop the next
    return this.saving;
  }

  /** The meta pairs a backup carries for these secrets, in the CLI's format and sealing (spec §9.6). */
  backupMeta() {
    const signed = this.signed.map((s) => [s.secret, s.createdAt, s.keptUntil]);
    const meta = [[PREKEYS, sealSecret(this.seed, pack([signed, [...this.oneTime]]))]];
    for (const [hex, session] of this.sessions) meta.push([RATCHET + hex, sealSecret(this.seed, pack(sessionRow(session)))]);
    for (const hex of this.stale) meta.push([STALE + hex, 1]); // as the CLI keeps it: a mark, not a secret
    return meta;
  }

  /**
   * Take the secrets a backup's `meta` carries: its sessions replace those held (any other is
   * stale once the identity moved), its pre-key secrets join those held. A value that does not
   * open under this seed or is not the shape the CLI writes is left out; this never throws.
   */
  takeBackup(meta) {
    this.sessions.clear();
    this.stale.clear();
    const stale = meta.filter(([key, value]) => typeof key === 'string' && key.startsWith(STALE) && value === 1).map(([key]) => key.slice(STALE.length));
    for (const [key, value] of meta) {
      const plain = openSecret(this.seed, value);
      if (plain === null) continue;
      try {
        if (key === PREKEYS) this.takePrekeys(unpack(plain));
        else if (key.startsWith(RATCHET)) {
          const row = unpack(plain);
          if (sessionShape(row) && toHex(row[0]) === key.slice(RATCHET.length)) this.sessions.set(toHex(row[0]), sessionOf(row));
        }
      } catch {
        // damaged or from a newer version: scheme 1 or a new session goes on for that connection
      }
    }
    for (const hex of stale) if (this.sessions.has(hex)) this.stale.add(hex);
  }

  takePrekeys([signed, oneTime]) {
    const held = new Set(this.signed.map((s) => toHex(s.secret)));
    for (const item of signed) {
      const [secret, createdAt, keptUntil] = item;
      if (!isSecret(secret) || !isInt(createdAt) || !isInt(keptUntil) || held.has(toHex(secret))) continue;
      this.signed.push({ secret, createdAt: Number(createdAt), keptUntil: Number(keptUntil) });
    }
    this.signed.sort((a, b) => a.createdAt - b.createdAt); // newest last, as signedPrekey reads them
    const spare = new Set(this.oneTime.map(toHex));
    this.oneTime = [...this.oneTime, ...oneTime.filter((s) => isSecret(s) && !spare.has(toHex(s)))].slice(-MAX_ONE_TIME);
  }

  /** Write from now on: the identity's keys are kept on this device. Resolves once written. */
  keep() {
    this.deferred = false;
    return this.save();
  }

  /**
   * The signed pre-key (public) a bundle expiring at `bundleUntil` names, stored before it is
   * returned: a new one when there is none or the newest is older than 30 days; secrets no bundle
   * can name any more are deleted (spec §14.1).
   */
  async signedPrekey(bundleUntil, now) {
    this.signed = this.signed.filter((s) => s.keptUntil > now);
    const newest = this.signed[this.signed.length - 1];
    if (newest === undefined || newest.createdAt + ROTATE_AFTER <= now) this.signed.push({ secret: randomBytes(32), createdAt: now, keptUntil: 0 });
    const held = this.signed[this.signed.length - 1];
    held.keptUntil = Math.max(held.keptUntil, bundleUntil + MAILBOX_WINDOW);
    await this.save();
    return x25519Public(held.secret);
  }

  /** Delete the secret of the one-time pre-key `pub`: a message that used it was taken (spec §14.5 step 9). */
  forgetOneTime(pub) {
    this.oneTime = this.oneTime.filter((s) => !equalBytes(x25519Public(s), pub));
  }

  /**
   * Top the node's stock of one-time pre-keys up to its cap when it is below the node's low mark
   * (spec §13.5), with `call(path, options)` (node.js's, with the session token). The secrets are
   * stored before the upload, so any key the node hands out is one this device holds. Resolves to
   * how many went up; a node without the endpoints is left alone. Throws NodeError when unreachable.
   */
  async replenish(seed, url, call, now) {
    let answer;
    try {
      answer = await call('/api/v1/prekeys', {});
    } catch (error) {
      if (error.code === 'local.unreachable') throw error;
      return 0;
    }
    const { stock, cap, low } = answer ?? {};
    if (![stock, cap, low].every(Number.isSafeInteger)) return 0;
    const wanted = Math.min(cap - stock, MAX_UPLOAD);
    if (stock >= low || wanted <= 0) return 0;
    const fresh = Array.from({ length: wanted }, () => randomBytes(32));
    this.oneTime = [...this.oneTime, ...fresh].slice(-MAX_ONE_TIME);
    await this.save();
    const at = now();
    const upload = sign(seed, 'prekeys', [url, fresh.map(x25519Public)], { createdAt: at, expiresAt: at + UPLOAD_LIFETIME });
    try {
      await call('/api/v1/prekeys', { method: 'POST', body: upload.raw, headers: { 'Content-Type': 'application/octet-stream' } });
    } catch {
      return 0; // uploaded again at the next sync below the mark
    }
    return wanted;
  }

  /**
   * replenish() one at a time, as the CLI tops up at every sync: at sign-in, when the live
   * connection is (re)made and after an item used a one-time pre-key. Asked while one runs, it
   * checks the stock once more after it, so two checks never both upload. Resolves to how many
   * went up; never throws (an unreachable node is tried again at the next sync).
   */
  topUp(seed, url, call, now) {
    if (this.topping) {
      this.topAgain = true;
      return this.topping;
    }
    this.topping = (async () => {
      let sent = 0;
      try {
        do {
          this.topAgain = false;
          sent += await this.replenish(seed, url, call, now);
        } while (this.topAgain);
      } catch {
        // unreachable: the next sync tries again
      } finally {
        this.topping = null;
      }
      return sent;
    })();
    return this.topping;
  }
}

let held = null; // { seed, secrets: Promise<Secrets> } for the identity unlocked in this page

/** The secrets of identity `seed`, loaded once per unlock; `fresh`: deferred until kept (a join). */
export function secretsFor(seed, { fresh = false } = {}) {
  if (held === null || !equalBytes(held.seed, seed)) held = { seed, secrets: new Secrets(seed, undefined, { deferred: fresh }).load() };
  return held.secrets;
}

/** Forget the secrets from memory (locking, erasing); what is stored stays sealed. */
export function forgetSecrets() {
  held = null;
}

/**
 * Check the node's stock of one-time pre-keys for signed-in `talk` (talk.js) and top it up below
 * `low` (Secrets.topUp), with its session token. Resolves to how many went up; never throws.
 */
export function topUpFor(talk) {
  const { keys, url } = talk.ctx;
  if (!talk.secrets || !keys) return Promise.resolve(0); // not restored yet, or locked
  return talk.secrets.topUp(keys.seed, url, (path, options) => call(url, path, { ...options, token: talk.ctx.token }), talk.ctx.now);
}

/** For publishBundle: the signed pre-key of identity `seed` a bundle expiring then names. */
export function prekeyFor(seed, now, { fresh = false } = {}) {
  return async (until) => (await secretsFor(seed, { fresh })).signedPrekey(until, now());
}
