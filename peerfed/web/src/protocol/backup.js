// The keyring and the backup file (spec §9.6), the same bytes the reference CLI reads and writes,
// so a person moves between the CLI and the browser both ways. Pure: no storage, no clock; salt
// and nonce are arguments with random defaults.
//
//   keyring = msgpack [seed (bin 32), [[x25519_secret (bin 32), created_at, expires_at], ...]]
//   blob    = 0x00 || data                                                  (no passphrase)
//           | 0x01 || salt (16) || ops (u32be) || mem (u32be) || secretbox   (passphrase)
//   secretbox = nonce (24) || XSalsa20-Poly1305(key, nonce, data)   (tag first, as libsodium)
//   key     = Argon2id(UTF-8 passphrase, salt, t = ops, m = mem / 1024 KiB, p = 1) -> 32 bytes
//   backup  = blob of msgpack ["peerfed-export/1", keyring, [[key, value], ...], [[table, rows], ...]]
//   secret  = nonce (24) || XSalsa20-Poly1305(BLAKE2b-256(seed, "peerfed/session"), nonce, data)
//             (a meta value sealed under the seed, as the CLI's keyring.seal_secret: pre-keys, sessions)

import { argon2idAsync } from '@noble/hashes/argon2.js';
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { blake2b256, concat, Person, randomBytes } from './crypto.js';
import { isInt, pack, unpack } from './encoding.js';
import { ProtocolError } from './errors.js';

export const BACKUP_FORMAT = 'peerfed-export/1';
/** libsodium's "interactive" Argon2id costs, the CLI's: 2 passes over 64 MiB. */
export const KDF_OPS = 2;
export const KDF_MEM = 64 * 1024 * 1024;
const MAX_OPS = 16;
const MAX_MEM = 2 ** 31;
const PLAIN = 0;
const SEALED = 1;
const SALT_BYTES = 16;
const NONCE_BYTES = 24;
const SEALED_HEAD = 1 + SALT_BYTES + 8;

/** The columns of each table a backup carries, in the order its rows list them (spec §9.6). */
export const BACKUP_TABLES = Object.freeze({
  peers: ['peer', 'bundle', 'bundle_expires', 'home', 'name', 'blocked'],
  listings: ['id', 'raw', 'author', 'origin', 'mine', 'expires_at', 'withdrawn', 'seen_at'],
  connections: ['id', 'listing', 'peer', 'side', 'created_at', 'updated_at', 'read_seq'],
  events: ['connection', 'inner_id', 'author', 'type', 'raw', 'at'],
});

const damaged = (why) => new ProtocolError('local.keyring', why);
const wrong = (why) => new ProtocolError('local.passphrase', why);
const isBytes = (v, n) => v instanceof Uint8Array && (n === undefined || v.length === n);

async function derive(passphrase, salt, ops, mem) {
  const password = new TextEncoder().encode(passphrase);
  // libsodium's crypto_pwhash counts memory in bytes and uses whole KiB; one lane.
  const m = Math.floor(mem / 1024);
  return argon2idAsync(password, salt, { t: ops, m, p: 1, dkLen: 32, version: 0x13, maxmem: MAX_MEM + 2 ** 20 });
}

/**
 * `data` as stored: plain (0x00) without a passphrase, else sealed under it (0x01). `salt`,
 * `nonce`, `ops` and `mem` default to fresh random values and the CLI's costs.
 */
export async function sealBlob(data, passphrase, { salt, nonce, ops = KDF_OPS, mem = KDF_MEM } = {}) {
  if (!passphrase) return concat(new Uint8Array([PLAIN]), data);
  const s = salt ?? randomBytes(SALT_BYTES);
  const n = nonce ?? randomBytes(NONCE_BYTES);
  if (!isBytes(s, SALT_BYTES) || !isBytes(n, NONCE_BYTES)) throw new Error('salt is 16 bytes, nonce 24');
  const head = new Uint8Array(SEALED_HEAD);
  const view = new DataView(head.buffer);
  head[0] = SEALED;
  head.set(s, 1);
  view.setUint32(1 + SALT_BYTES, ops);
  view.setUint32(1 + SALT_BYTES + 4, mem);
  const key = await derive(passphrase, s, ops, mem);
  return concat(head, n, xsalsa20poly1305(key, n).encrypt(data));
}

/** True when `blob` is sealed under a passphrase. */
export function isLocked(blob) {
  return isBytes(blob) && blob.length > 0 && blob[0] === SEALED;
}

/**
 * The data inside a blob. Throws ProtocolError(local.passphrase) for a missing or wrong
 * passphrase, ProtocolError(local.keyring) for a damaged blob or unreasonable costs.
 */
export async function openBlob(blob, passphrase) {
  if (!isBytes(blob) || blob.length === 0) throw damaged('empty');
  if (blob[0] === PLAIN) return blob.slice(1);
  if (blob[0] !== SEALED || blob.length < SEALED_HEAD + NONCE_BYTES + 16) {
    throw damaged('damaged, or made by a newer version');
  }
  if (!passphrase) throw wrong('this is protected by a passphrase');
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const salt = blob.slice(1, 1 + SALT_BYTES);
  const ops = view.getUint32(1 + SALT_BYTES);
  const mem = view.getUint32(1 + SALT_BYTES + 4);
  // The same bounds as the CLI, plus libsodium's own floor (a pass, 8 KiB), so a hostile file
  // cannot make the device spend hours or gigabytes before it is refused.
  if (ops > MAX_OPS || mem > MAX_MEM || ops < 1 || mem < 8192) throw damaged('it asks for unreasonable Argon2id costs');
  const key = await derive(passphrase, salt, ops, mem);
  const nonce = blob.slice(SEALED_HEAD, SEALED_HEAD + NONCE_BYTES);
  try {
    return xsalsa20poly1305(key, nonce).decrypt(blob.slice(SEALED_HEAD + NONCE_BYTES));
  } catch {
    throw wrong('wrong passphrase');
  }
}

/** A keyring's bytes: `{ seed, encryption: [{ secret, createdAt, expiresAt }, ...] }` (spec §9.6). */
export function keyringToBytes({ seed, encryption }) {
  if (!isBytes(seed, 32)) throw new Error('a seed is 32 bytes');
  return pack([seed, encryption.map(({ secret, createdAt, expiresAt }) => [secret, createdAt, expiresAt])]);
}

/** Parse a keyring's bytes; throws ProtocolError(local.keyring) if they are not one. */
export function keyringFromBytes(bytes) {
  let value;
  try {
    value = unpack(bytes);
  } catch {
    throw damaged('the keyring is damaged');
  }
  if (!Array.isArray(value) || value.length !== 2 || !isBytes(value[0], 32) || !Array.isArray(value[1])) {
    throw damaged('the keyring is damaged');
  }
  const encryption = value[1].map((item) => {
    if (!Array.isArray(item) || item.length !== 3 || !isBytes(item[0], 32) || !isInt(item[1]) || !isInt(item[2])) {
      throw damaged('the keyring is damaged');
    }
    return { secret: item[0], createdAt: Number(item[1]), expiresAt: Number(item[2]) };
  });
  return { seed: value[0], encryption };
}

function tableOf(value) {
  if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && Object.hasOwn(BACKUP_TABLES, value[0])) {
    const width = BACKUP_TABLES[value[0]].length;
    if (Array.isArray(value[1]) && value[1].every((row) => Array.isArray(row) && row.length === width)) {
      return [value[0], value[1]];
    }
  }
  throw damaged('this is not a peerfed backup');
}

/**
 * A backup's contents as a file carries them once opened: `{ keyring: bytes, meta: [[key, value]],
 * tables: [[name, rows]] }` (spec §9.6); the caller seals them with `writeBackup`.
 */
export function backupToBytes({ keyring, meta = [], tables = [] }) {
  return pack([BACKUP_FORMAT, keyring, meta.map(([k, v]) => [k, v]), tables.map(([name, rows]) => [name, rows])]);
}

/** Parse an opened backup; throws ProtocolError(local.keyring) if it is not one. */
export function backupFromBytes(bytes) {
  let value;
  try {
    value = unpack(bytes);
  } catch {
    throw damaged('this is not a peerfed backup');
  }
  if (!Array.isArray(value) || value.length !== 4 || value[0] !== BACKUP_FORMAT) throw damaged('this is not a peerfed backup');
  const [, keyring, meta, tables] = value;
  if (!isBytes(keyring) || !Array.isArray(meta) || !Array.isArray(tables)) throw damaged('this is not a peerfed backup');
  for (const pair of meta) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') throw damaged('this is not a peerfed backup');
  }
  return { keyring, meta, tables: tables.map(tableOf) };
}

/**
 * A backup file: always sealed under a passphrase, as the CLI's `peerfed id export` writes it.
 * Throws ProtocolError(local.passphrase) without one.
 */
export async function writeBackup(contents, passphrase, options = {}) {
  if (!passphrase) throw wrong('a backup is always encrypted: choose a passphrase');
  return sealBlob(backupToBytes(contents), passphrase, options);
}

/**
 * Open a backup file: `{ keys: { seed, encryption }, keyring, meta, tables }`. Throws
 * ProtocolError(local.passphrase) for a missing or wrong passphrase, (local.keyring) for anything
 * that is not a backup.
 */
export async function readBackup(file, passphrase) {
  const backup = backupFromBytes(await openBlob(file, passphrase));
  return { ...backup, keys: keyringFromBytes(backup.keyring) };
}

const secretKey = (seed) => blake2b256(seed, Person.SESSION);

/**
 * `data` sealed under identity `seed` as the CLI seals its device secrets in meta (pre-keys,
 * scheme-2 sessions; spec §9.6): a libsodium secretbox under BLAKE2b-256(seed, "peerfed/session").
 */
export function sealSecret(seed, data, nonce = randomBytes(NONCE_BYTES)) {
  return concat(nonce, xsalsa20poly1305(secretKey(seed), nonce).encrypt(data));
}

/** What `sealSecret` sealed under `seed`, or null when `stored` is not bytes or does not open. */
export function openSecret(seed, stored) {
  if (!isBytes(stored) || stored.length < NONCE_BYTES + 16) return null;
  try {
    return xsalsa20poly1305(secretKey(seed), stored.slice(0, NONCE_BYTES)).decrypt(stored.slice(NONCE_BYTES));
  } catch {
    return null;
  }
}
