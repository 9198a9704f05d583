// Scheme-2 secrets in a backup file (spec §9.6): the page writes and reads meta `prekeys` and
// `ratchet <connection hex>` exactly as the CLI does, sealed under the seed's "peerfed/session"
// key. The bytes below were made by the Python reference (Session.to_wire, PreKeySecrets.to_bytes,
// keyring.seal_secret with a fixed nonce), so a round trip through the page must give them back.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { fromHex, openSecret, pack, sealSecret, toHex, unpack } from '../src/protocol/index.js';
import { Secrets } from '../src/app/sessions.js';

const FROM_PYTHON = {
  session1: '94c41014141414141414141414141414141414c4201515151515151515151515151515151515151515151515151515151515151515c42016161616161616161616161616161616161616161616161616161616161616169bc4200a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0ac0c4200b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0bc00003c4200c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0cce000111709293c4200d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d05c4200e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e93c4200f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0fceffffffffc420101010101010101010101010101010101010101010101010101010101010101091c420111111111111111111111111111111111111111111111111111111111111111196c4200101010101010101010101010101010101010101010101010101010101010101c4200202020202020202020202020202020202020202020202020202020202020202c4200303030303030303030303030303030303030303030303030303030303030303c0c4200505050505050505050505050505050505050505050505050505050505050505c44006060606060606060606060606060606060606060606060606060606060606060606060606060606060606060606060606060606060606060606060606060606',
  session1Sealed: '2828282828282828282828282828282828282828282828285a83a5b1acc2c0e30eb058b76b4299effee27505a99bb209b1c38352019a11224c3dfee4f1f2de1fd7b4cd4b642a891629517abd255681a585656967ae70158f6ae91920d74fd7161003997583e71a3452ba6402e4fd8c0e9535e30b64ac97cbef332f1f6cd7ed120d4bb3147cea0e5f4e5a97cc5792079efdee9e4d737e3ac89e6695302a4047a573966343815e0fa55be7970a921d6f16174ac115a3c87c3fe4ea525b9625a3c756042798eebd89b99f6d6cd36cbe6a429d4184c2f6b1bcff1beec41ca7e356b66eb2fdd6da20bc4f2589ef1c5c3db391bf1b6856faf4bcd807a36e4b5425012445eeec96014c88365c9a1bef2979db1d29b32dc814212d33a7df07a4a67bd6176121582beae138fb1a539b7ff2fa3e26764988dc1d37ecf63b683fc1c74e83fb1dacbd1c35fc52a5449ff6ba54b5e0dcefc317f4a9fc78ac378d8853df3673693e06e79ee44beda3a87eb474c5f5175efc7f935fa046b140eda5cf86c1c89094775c104cb9507d3fa18181c37edf779ce31e67866f5a17e22b0f42f9995d395ec93cc89e3e6f8024e4d5ee7733c5ae0e28f76ee95a6bce6f6fe841fde81418ca91a96c045f8627416524a613faa95e37d34349975dfab87d4657c43b016eee7d6d2a508b5d27c760f3c1705537d5170b7b004cd32a4290e302179c34d243af0b87a20fea9f9b00b5936b973e5fd1d3a97a89bf22f3786a1b454de2eb3be1348d3b5ef450eb7edac19aa4fcf4c0a49d957ec2c1ed7cba76b9cfb0e4db0894963ef7ad45f0c771bedf65885156c790b6fda51eaf76c148ffaa8343dbc3f602aa1a1da59aa5cb585ce95cea9297aca59c',
  session2: '94c41017171717171717171717171717171717c0c42018181818181818181818181818181818181818181818181818181818181818189bc4201919191919191919191919191919191919191919191919191919191919191919c0c0c00000c0009090c0',
  session2Sealed: '282828282828282828282828282828282828282828282828cc5b0df6002a097005a06128a50e257efee27506aa98b10ab2c08051029912214f3efde015c7d312dab9c0466927841b245c77b0285b8ca88868646aa37d188267e4142dda936cc4260c967a8ce8153b5db56b0debf283019a3aec046ba398c4e03c201063d8e290d0ab79de76e0c455d4c05d',
  prekeys: '929193c4201e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1ece6b49d200ce6ba55f8092c4201f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1fc4202020202020202020202020202020202020202020202020202020202020202020',
  prekeysSealed: '282828282828282828282828282828282828282828282828a1e39cd24bde8238619d4346c557021ff8b7f6d59d91b803bbc989580b901b284637f43ecff9d514dcbfc6406f21821d225a71b62e8dfff94270b2191e3a8008bbdc132add94e81f190a907c8aee133d5bb36d0bedf485079c3cea026da59ec2e63afd295ae1dba9e94b993e56c024756470bde67db82db4d7c4b467595410e2b44cbf1a',
};
const bytes = (name) => fromHex(FROM_PYTHON[name]);
const seed = new Uint8Array(32).fill(7);
const nonce = new Uint8Array(24).fill(0x28);
const memory = () => ({ load: async () => null, save: async () => {} });
const key1 = `ratchet ${'14'.repeat(16)}`;
const key2 = `ratchet ${'17'.repeat(16)}`;
const cliMeta = () => [
  ['node', 'http://127.0.0.1:1'],
  ['prekeys', bytes('prekeysSealed')],
  [key1, bytes('session1Sealed')],
  [key2, bytes('session2Sealed')],
  [`sealed ${'99'.repeat(16)}`, bytes('prekeysSealed')],
];

test('a secret is sealed and opened as the CLI seals it', () => {
  for (const name of ['session1', 'session2', 'prekeys']) {
    assert.equal(toHex(sealSecret(seed, bytes(name), nonce)), FROM_PYTHON[`${name}Sealed`]);
    assert.equal(toHex(openSecret(seed, bytes(`${name}Sealed`))), FROM_PYTHON[name]);
  }
  assert.equal(openSecret(new Uint8Array(32).fill(8), bytes('prekeysSealed')), null);
  for (const stored of [null, 5, 'text', new Uint8Array(10)]) assert.equal(openSecret(seed, stored), null);
});

test("the CLI's sessions and pre-key secrets come in and go out again byte for byte", () => {
  const secrets = new Secrets(seed, memory());
  secrets.takeBackup(cliMeta());
  assert.deepEqual([...secrets.sessions.keys()].sort(), ['14'.repeat(16), '17'.repeat(16)]);
  const s1 = secrets.sessions.get('14'.repeat(16));
  assert.equal(s1.state.skipped.length, 2);
  assert.equal(s1.state.agreement[3], null);
  assert.equal(s1.state.own, null);
  assert.equal(secrets.sessions.get('17'.repeat(16)).peer, null);
  assert.deepEqual(secrets.signed.map((s) => [toHex(s.secret), s.createdAt, s.keptUntil]), [['1e'.repeat(32), 1_800_000_000, 1_806_000_000]]);
  assert.deepEqual(secrets.oneTime.map(toHex), ['1f'.repeat(32), '20'.repeat(32)]);
  const out = new Map(secrets.backupMeta().map(([k, v]) => [k, toHex(openSecret(seed, v))]));
  assert.deepEqual([...out.keys()].sort(), ['prekeys', key1, key2]);
  assert.equal(out.get('prekeys'), FROM_PYTHON.prekeys);
  assert.equal(out.get(key1), FROM_PYTHON.session1);
  assert.equal(out.get(key2), FROM_PYTHON.session2);
});

test('opening a backup drops stale sessions and keeps the pre-key secrets held', () => {
  const secrets = new Secrets(seed, memory());
  const mine = new Uint8Array(32).fill(0x33);
  secrets.signed = [{ secret: mine, createdAt: 1_900_000_000, keptUntil: 1_910_000_000 }];
  secrets.oneTime = [new Uint8Array(32).fill(0x34), new Uint8Array(32).fill(0x1f)];
  secrets.sessions.set('aa'.repeat(16), { stale: true });
  secrets.takeBackup(cliMeta());
  assert.equal(secrets.sessions.has('aa'.repeat(16)), false);
  assert.deepEqual(secrets.signed.map((s) => toHex(s.secret)), ['1e'.repeat(32), '33'.repeat(32)]); // newest last
  assert.deepEqual(secrets.oneTime.map(toHex), ['34'.repeat(32), '1f'.repeat(32), '20'.repeat(32)]);
});

test('a value that does not open or parse is left out and the rest still comes in', () => {
  const other = new Uint8Array(32).fill(9);
  const bad = (value) => sealSecret(seed, pack(value));
  const secrets = new Secrets(seed, memory());
  secrets.takeBackup([
    ['prekeys', sealSecret(other, bytes('prekeys'))], // another identity's
    [key1, bytes('session2Sealed')], // a session filed under another connection
    [`ratchet ${'01'.repeat(16)}`, bad([1, 2, 3])],
    [`ratchet ${'02'.repeat(16)}`, sealSecret(seed, new Uint8Array([0xc1]))], // not msgpack
    [`ratchet ${'03'.repeat(16)}`, 'not bytes'],
    [key2, bytes('session2Sealed')],
  ]);
  assert.deepEqual([...secrets.sessions.keys()], ['17'.repeat(16)]);
  assert.deepEqual(secrets.signed, []);
  const damaged = new Secrets(seed, memory());
  damaged.takeBackup([['prekeys', bad([[[new Uint8Array(31), 1, 2], 'x'], [new Uint8Array(32).fill(1), 7]])]]);
  assert.deepEqual(damaged.signed, []);
  assert.deepEqual(damaged.oneTime.map(toHex), ['01'.repeat(32)]);
  assert.doesNotThrow(() => new Secrets(seed, memory()).takeBackup([['prekeys', bad('nope')]]));
  assert.equal(unpack(bytes('prekeys')).length, 2);
});
