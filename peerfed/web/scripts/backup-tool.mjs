// The JS core's backup functions from the command line (spec §9.6), for the cross-test with the
// Python CLI (tests/client/test_web_backup.py). The passphrase comes from PEERFED_PASSPHRASE.
//
//   node scripts/backup-tool.mjs open FILE        -> {"peer", "keys", "meta", "tables"} as JSON
//   node scripts/backup-tool.mjs write FILE NODE  -> a new identity joins NODE as the browser
//                                                    does, then its backup; {"peer"}
//   node scripts/backup-tool.mjs age FILE DAYS    -> the same backup, its newest key made as if
//                                                    long ago so it ends in DAYS days; {"peer"}
// A refusal prints {"error": {"code", "message"}} and exits 1.

import { readFileSync, writeFileSync } from 'node:fs';
import { identityFromSeed, keyringToBytes, peerIdText, readBackup, toHex, writeBackup } from '../src/protocol/index.js';
import { join, newKeys, peerOf } from '../src/app/account.js';

const passphrase = process.env.PEERFED_PASSPHRASE ?? '';
const [command, file, node] = process.argv.slice(2);

function jsonable(value) {
  if (value instanceof Uint8Array) return { hex: toHex(value) };
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(jsonable);
  return value;
}

try {
  if (command === 'open') {
    const backup = await readBackup(new Uint8Array(readFileSync(file)), passphrase);
    console.log(JSON.stringify({
      peer: peerIdText(identityFromSeed(backup.keys.seed).publicKey),
      keys: backup.keys.encryption.map((k) => ({ created_at: k.createdAt, expires_at: k.expiresAt })),
      meta: Object.fromEntries(backup.meta.map(([k, v]) => [k, jsonable(v)])),
      tables: Object.fromEntries(backup.tables.map(([name, rows]) => [name, rows.length])),
    }));
  } else if (command === 'write') {
    const keys = newKeys(Math.floor(Date.now() / 1000));
    const name = 'Made in a browser';
    await join(node, keys, { name });
    const meta = [['node', node], ['name', name], ['standing', 'member']];
    const tables = [['peers', []], ['listings', []], ['connections', []], ['events', []]];
    writeFileSync(file, await writeBackup({ keyring: keyringToBytes(keys), meta, tables }, passphrase), { mode: 0o600 });
    console.log(JSON.stringify({ peer: peerOf(keys) }));
  } else if (command === 'age') {
    // For renewal tests: a key near its end, without waiting weeks (spec §12, 60-day bundles).
    const backup = await readBackup(new Uint8Array(readFileSync(file)), passphrase);
    const now = Math.floor(Date.now() / 1000);
    const key = backup.keys.encryption.at(-1);
    key.expiresAt = now + Number(node) * 86_400;
    key.createdAt = key.expiresAt - 60 * 86_400;
    const keyring = keyringToBytes(backup.keys);
    writeFileSync(file, await writeBackup({ keyring, meta: backup.meta, tables: backup.tables }, passphrase), { mode: 0o600 });
    console.log(JSON.stringify({ peer: peerOf(backup.keys) }));
  } else {
    throw Object.assign(new Error('usage: open FILE | write FILE NODE | age FILE DAYS'), { code: 'local.usage' });
  }
} catch (error) {
  console.log(JSON.stringify({ error: { code: error.code ?? 'local.bug', message: error.message } }));
  process.exit(1);
}
