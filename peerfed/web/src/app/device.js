// This device's backup (spec §9.6): the conversations a Talk holds written as the CLI's
// `peerfed id export` writes them, and a backup's tables read back into conversations, so a person
// moves between the CLI and the browser both ways and goes on talking. No DOM and no storage here,
// so the same code runs under Node in the tests.

import {
  decodeVerified, equalBytes, fromHex, identityFromSeed, keyringToBytes, openSigned, reacherBundle, toHex,
} from '../protocol/index.js';
import { rebuild } from './talk_state.js';

const INNER = { context: 'peerfed/v1/sealed-inner' };

/**
 * The contents of a backup of `keys` and the conversations and blocks of `talk` (the CLI's tables:
 * peers, listings, connections, events), with the home `node` and chosen `name`; seal them with
 * writeBackup. A conversation whose words were deleted holds nothing to carry and is left out.
 * `secrets` (sessions.js), when given, adds its pre-key secrets and sessions to the meta values.
 */
export function backupOf(keys, talk, { node, name, secrets = null }) {
  const peers = new Map();
  const connections = [];
  const events = [];
  for (const c of talk.conversations.values()) {
    if (c.erased || c.events.length === 0) continue;
    const envs = c.events.map((raw) => decodeVerified(raw, INNER));
    const theirs = envs.filter((e) => e.type === 'message' && !equalBytes(e.author, talk.me)).map((e) => e.body.seq);
    const id = fromHex(c.id);
    connections.push([id, envs[0].body.listing, c.peer, c.mine ? 'reacher' : 'author', envs[0].createdAt, envs.at(-1).createdAt, Math.max(0, ...theirs)]);
    for (const env of envs) events.push([id, env.id, env.author, env.type, env.raw, env.createdAt]);
    // No bundle: the device that opens this asks the node for the current one when it writes.
    peers.set(c.id + toHex(c.peer), [c.peer, null, 0, c.other.home ?? null, c.other.name ?? null, talk.blocked.has(toHex(c.peer)) ? 1 : 0]);
  }
  const rows = [...peers.values()];
  for (const hex of talk.blocked) {
    if (!rows.some((r) => toHex(r[0]) === hex)) rows.push([fromHex(hex), null, 0, null, null, 1]);
  }
  const meta = [['node', node], ['name', name || null], ['standing', 'member'], ...(secrets ? secrets.backupMeta() : [])];
  const tables = [['peers', dedupe(rows)], ['listings', []], ['connections', connections], ['events', events]];
  return { keyring: keyringToBytes(keys), meta, tables };
}

function dedupe(rows) {
  const byPeer = new Map();
  for (const row of rows) byPeer.set(toHex(row[0]), row);
  return [...byPeer.values()];
}

/** The value of `key` among a backup's meta pairs, or null. */
export function metaOf(backup, key) {
  const pair = backup.meta.find(([k]) => k === key);
  return pair ? pair[1] : null;
}

function bundleFields(env) {
  return { encryptionKey: env.body.encryptionKey, home: env.body.home, name: env.body.pseudonym };
}

/**
 * The conversations and blocks of an opened backup, as a Talk holds them: `{ me, conversations,
 * blocked }`. The other side's encryption key comes from the bundle the backup kept when it is
 * still valid at `now`, else from the reach-out when they reached out, else from
 * `await bundleFor(peer)` (the node's current one). A connection whose history does not replay
 * through the state machine is left out rather than shown wrong. Throws what bundleFor throws.
 */
export async function talkFromBackup(backup, { now, bundleFor }) {
  const me = identityFromSeed(backup.keys.seed).publicKey;
  const table = (name) => backup.tables.find(([n]) => n === name)?.[1] ?? [];
  const peers = new Map(table('peers').map((row) => [toHex(row[0]), row]));
  const blocked = new Set([...peers.values()].filter((row) => row[5]).map((row) => toHex(row[0])));
  const events = new Map();
  for (const [connection, , , , raw] of table('events')) {
    const id = toHex(connection);
    if (!events.has(id)) events.set(id, []);
    events.get(id).push(raw);
  }
  const conversations = new Map();
  for (const [connection, , peer, side] of table('connections')) {
    const id = toHex(connection);
    const raws = events.get(id) ?? [];
    if (raws.length === 0) continue; // its words were deleted on the device the backup came from
    const row = peers.get(toHex(peer));
    let other = null;
    try {
      if (row && row[1]) other = bundleFields(openSigned(row[1], { context: 'peerfed/v1/key-bundle', now, maxBytes: 1024 }));
    } catch {
      other = null; // expired or damaged: take another
    }
    const first = decodeVerified(raws[0], INNER);
    if (!other && side === 'author' && first.type === 'reach-out' && first.body.bundle) {
      try {
        other = bundleFields(reacherBundle(first));
      } catch {
        other = null;
      }
    }
    if (!other) other = await bundleFor(peer);
    const mine = side === 'reacher';
    const unread = 0;
    let c;
    try {
      c = rebuild(me, [id, mine, peer, other.encryptionKey, other.home ?? null, other.name ?? (row ? row[4] : null), null, unread, false, null, null, raws]);
    } catch {
      continue;
    }
    c.blocked = blocked.has(toHex(peer));
    conversations.set(id, c);
  }
  return { me, conversations, blocked };
}
