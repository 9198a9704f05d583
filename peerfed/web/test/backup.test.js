// The keyring and backup file (spec §9.6) as pure functions: round trips, every refusal with its
// code, tampering. That the bytes are the CLI's own is proved by tests/client/test_web_backup.py,
// which runs the real CLI against these functions both ways.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BACKUP_FORMAT,
  backupFromBytes,
  backupToBytes,
  isLocked,
  keyringFromBytes,
  keyringToBytes,
  openBlob,
  pack,
  readBackup,
  sealBlob,
  writeBackup,
} from '../src/protocol/index.js';

// The smallest costs libsodium accepts, so each test derives a key in milliseconds.
const CHEAP = { ops: 1, mem: 8192 };
const bytes = (n, fill) => new Uint8Array(n).fill(fill);
const keys = { seed: bytes(32, 7), encryption: [{ secret: bytes(32, 9), createdAt: 1_700_000_000, expiresAt: 1_705_184_000 }] };
const contents = {
  keyring: keyringToBytes(keys),
  meta: [['node', 'http://127.0.0.1:8740'], ['name', null], ['standing', 'member']],
  tables: [['peers', []], ['listings', []], ['connections', []], ['events', []]],
};

async function code(promise) {
  try {
    await promise;
  } catch (error) {
    return error.code;
  }
  return 'no error';
}

test('a backup written under a passphrase opens with it and gives back every value', async () => {
  const file = await writeBackup(contents, 'a long walk home', CHEAP);
  assert.ok(isLocked(file));
  const opened = await readBackup(file, 'a long walk home');
  assert.deepEqual(opened.keys, keys);
  assert.deepEqual(opened.meta, contents.meta);
  assert.deepEqual(opened.tables, contents.tables);
});

test('the file layout is the spec’s: 0x01, salt, costs big-endian, then nonce and the box', async () => {
  const salt = bytes(16, 1);
  const nonce = bytes(24, 2);
  const file = await writeBackup(contents, 'pass', { ...CHEAP, salt, nonce });
  assert.equal(file[0], 1);
  assert.deepEqual(file.slice(1, 17), salt);
  assert.deepEqual([...file.slice(17, 25)], [0, 0, 0, 1, 0, 0, 0x20, 0]);
  assert.deepEqual(file.slice(25, 49), nonce);
  assert.equal(file.length, 49 + 16 + backupToBytes(contents).length);
  // Deterministic given salt and nonce: the same inputs, the same bytes.
  assert.deepEqual(await writeBackup(contents, 'pass', { ...CHEAP, salt, nonce }), file);
});

test('a wrong or missing passphrase is local.passphrase, never a damaged file', async () => {
  const file = await writeBackup(contents, 'right', CHEAP);
  assert.equal(await code(readBackup(file, 'wrong')), 'local.passphrase');
  assert.equal(await code(readBackup(file, '')), 'local.passphrase');
  assert.equal(await code(writeBackup(contents, '', CHEAP)), 'local.passphrase');
});

test('flipping any byte of the sealed part fails the tag', async () => {
  const file = await writeBackup(contents, 'right', CHEAP);
  for (const at of [25, 40, 49, 60, file.length - 1]) {
    const bad = file.slice();
    bad[at] ^= 1;
    assert.equal(await code(openBlob(bad, 'right')), 'local.passphrase', `byte ${at}`);
  }
});

test('damaged files, unknown versions and unreasonable costs are local.keyring', async () => {
  const file = await writeBackup(contents, 'right', CHEAP);
  assert.equal(await code(openBlob(new Uint8Array(0), 'right')), 'local.keyring');
  assert.equal(await code(openBlob(new Uint8Array([2, ...file.slice(1)]), 'right')), 'local.keyring');
  assert.equal(await code(openBlob(file.slice(0, 60), 'right')), 'local.keyring');
  for (const [ops, mem] of [[17, 8192], [0, 8192], [1, 1024], [2, 2 ** 32 - 1]]) {
    const costly = file.slice();
    const view = new DataView(costly.buffer);
    view.setUint32(17, ops);
    view.setUint32(21, mem);
    assert.equal(await code(openBlob(costly, 'right')), 'local.keyring', `${ops} ${mem}`);
  }
});

test('what is inside must be a backup: format, keyring and tables are checked', async () => {
  const notBackup = [
    pack(['peerfed-export/2', contents.keyring, [], []]),
    pack([BACKUP_FORMAT, 'not bytes', [], []]),
    pack([BACKUP_FORMAT, contents.keyring, [[1, 2]], []]),
    pack([BACKUP_FORMAT, contents.keyring, [], [['secrets', []]]]),
    pack([BACKUP_FORMAT, contents.keyring, [], [['peers', [[1, 2]]]]]),
    new Uint8Array([0xc1]),
  ];
  for (const inner of notBackup) assert.throws(() => backupFromBytes(inner), { code: 'local.keyring' });
  for (const inner of [pack([bytes(31, 0), []]), pack([bytes(32, 0), [[bytes(32, 0), 1]]]), pack('x')]) {
    assert.throws(() => keyringFromBytes(inner), { code: 'local.keyring' });
  }
  // A plain blob (a keyring kept without a passphrase) opens without one, as the CLI's does.
  const plain = await sealBlob(contents.keyring, null);
  assert.equal(plain[0], 0);
  assert.deepEqual(keyringFromBytes(await openBlob(plain, null)), keys);
});

test('the CLI’s own costs (2 passes, 64 MiB) round trip', async () => {
  const file = await writeBackup(contents, 'at the default costs');
  assert.deepEqual([...file.slice(17, 25)], [0, 0, 0, 2, 4, 0, 0, 0]);
  assert.deepEqual((await readBackup(file, 'at the default costs')).keys, keys);
});
