// This device's keys at rest (spec §9.6, §12): one IndexedDB record holding the keyring blob,
// sealed under the person's passphrase with Argon2id when they chose one, plus the home node and
// chosen name. The session token is never stored: unlocking signs in again.

import { isLocked, keyringFromBytes, keyringToBytes, openBlob, sealBlob } from '../protocol/index.js';

const DATABASE = 'peerfed';
const STORE = 'device';
const KEY = 'this-device';

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function database() {
  const opening = indexedDB.open(DATABASE, 1);
  opening.onupgradeneeded = () => opening.result.createObjectStore(STORE);
  return request(opening);
}

async function inStore(mode, act) {
  const db = await database();
  try {
    const tx = db.transaction(STORE, mode);
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
    const result = await request(act(tx.objectStore(STORE)));
    await done;
    return result;
  } finally {
    db.close();
  }
}

/** The stored record `{ keyring: blob, node, name, fromBackup }`, or null on a device that holds none. */
export async function loadDevice() {
  return (await inStore('readonly', (store) => store.get(KEY))) ?? null;
}

/**
 * Seal `keys` under `passphrase` (plain when empty) and keep them with the home node and name;
 * `fromBackup` remembers that the identity was brought in from a backup, not made here.
 */
export async function saveDevice(keys, passphrase, { node, name, fromBackup = false }) {
  const keyring = await sealBlob(keyringToBytes(keys), passphrase);
  await inStore('readwrite', (store) => store.put({ keyring, node, name: name || null, fromBackup: Boolean(fromBackup) }, KEY));
  if (unsaved) await inStore('readwrite', (store) => store.put(unsaved, DEVICE_ID));
  unsaved = null;
}

/** The keys of a stored record. Throws ProtocolError(local.passphrase) for a wrong passphrase. */
export async function unlockDevice(record, passphrase) {
  return keyringFromBytes(await openBlob(record.keyring, passphrase));
}

/** True when the stored keys need a passphrase to open. */
export function needsPassphrase(record) {
  return isLocked(record.keyring);
}

const STATE = 'talk-state';
const DEVICE_ID = 'device-id';

// A device id made for a join that has not succeeded yet: kept with the keys by saveDevice(), so a
// failed join leaves nothing behind in IndexedDB.
let unsaved = null;

/**
 * This browser's device id (spec §13.4, One device at a time): 16 random bytes, made once and
 * kept (from the first successful join on), so the node can tell this device from the others
 * one identity has been used on.
 */
export async function deviceId() {
  const held = await inStore('readonly', (store) => store.get(DEVICE_ID));
  if (held instanceof Uint8Array && held.length === 16) return held;
  unsaved ??= crypto.getRandomValues(new Uint8Array(16));
  return unsaved;
}

/** Delete everything this page keeps (keys, conversations, device id): the IndexedDB database itself. */
export async function wipeDevice() {
  await request(indexedDB.deleteDatabase(DATABASE));
}

/** The sealed conversation state this device keeps (bytes), or null. */
export async function loadState() {
  return (await inStore('readonly', (store) => store.get(STATE))) ?? null;
}

/** Keep the sealed conversation state `bytes` (talk_state.js seals it). */
export async function saveState(bytes) {
  await inStore('readwrite', (store) => store.put(bytes, STATE));
}

// Scheme-2 pre-key secrets and sessions (sessions.js seals them): apart from the conversations,
// since a backup carries conversations and must never carry these (spec §14.4).
const SECRETS = 'ratchet-secrets';

/** The sealed pre-key secrets and sessions this device keeps (bytes), or null. */
export async function loadSecrets() {
  return (await inStore('readonly', (store) => store.get(SECRETS))) ?? null;
}

/** Keep the sealed pre-key secrets and sessions `bytes`. */
export async function saveSecrets(bytes) {
  await inStore('readwrite', (store) => store.put(bytes, SECRETS));
}
