// Bodies the node protocol signs (spec §13): node documents, node requests, client-auth proofs,
// moves; and the client's binding of a sign-in proof to the node it meant (§13.4).

import { blake2b256, isValidEd25519Point, Person } from './crypto.js';
import { invalid, ProtocolError } from './errors.js';
import { array, binary, LANG, matching, oneOf, optText, set, text, uint, VOCAB } from './fields.js';

const DAY = 86_400;
const MAX_TIMESTAMP = 2 ** 40 - 1;
// scheme://host[:port] and nothing else (spec §13.1): a DNS name or IPv4 address, or an IPv6
// literal in brackets, and a port 1-65535 without leading zeros.
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?';
const NODE_URL = new RegExp(`^https?://(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9A-Fa-f:.]+\\])(?::([1-9][0-9]{0,4}))?$`);

/** A node URL (spec §13.1); throws ProtocolError(schema.invalid) otherwise. */
export function checkUrl(value, name) {
  const url = text(value, name, 256);
  const match = NODE_URL.exec(url);
  if (match === null || Number(match[1] ?? 1) > 65_535) {
    throw invalid(`${name} must be an http(s) URL with a host and at most a port`);
  }
  return url;
}

/** BLAKE2b-256 of an HTTP body, as node requests sign it (spec §13.3). */
export function bodyHash(body) {
  return blake2b256(body, Person.BODY);
}

/** What an erasure tombstone keeps instead of the erased peer's id (spec §13.6). */
export function erasedHash(peer) {
  return blake2b256(peer, Person.ERASED);
}

function resource(value) {
  const [name, contact, hours, languages, emergency, note] = array(value, 'resource', 6);
  return {
    name: text(name, 'resource name', 100),
    contact: text(contact, 'resource contact', 300, true),
    hours: optText(hours, 'hours', 200, true),
    languages: set(languages, 'languages', 0, 8).map((t) => matching(t, 'language', 35, LANG)),
    emergency: oneOf(emergency, 'emergency', ['never', 'on-request', 'may']),
    note: optText(note, 'note', 500, true),
  };
}

function nodeKey(value) {
  const [key, validFrom, validUntil] = array(value, 'node key', 3);
  binary(key, 'node key', 32);
  if (!isValidEd25519Point(key)) throw invalid('a node key must be a valid Ed25519 key encoding');
  uint(validFrom, 'valid_from', 0, MAX_TIMESTAMP);
  uint(validUntil, 'valid_until', 0, MAX_TIMESTAMP);
  if (validFrom >= validUntil) throw invalid('a node key must become valid before it stops being valid');
  return { key, validFrom, validUntil };
}

function limit(value) {
  const [name, v] = array(value, 'limit', 2);
  return [matching(name, 'limit name', 32, VOCAB), uint(v, 'limit value', 0, 2 ** 32 - 1)];
}

function nodeDocument(value) {
  const [url, name, description, contact, registration, conduct, resources, retention, limits, protocols,
    software, federation, keys, vocabulary, webClient] = array(value, 'node document body', 15);
  const [mailboxTtl, maxListingLifetime] = array(retention, 'retention', 2);
  const parsedLimits = set(limits, 'limits', 0, 32).map(limit);
  if (new Set(parsedLimits.map(([n]) => n)).size !== parsedLimits.length) throw invalid('a limit is named twice');
  return {
    url: checkUrl(url, 'url'),
    name: text(name, 'name', 64),
    description: text(description, 'description', 2000, true),
    contact: text(contact, 'contact', 300, true),
    registration: oneOf(registration, 'registration', ['open', 'invite', 'approval']),
    codeOfConduct: text(conduct, 'code of conduct', 8000, true),
    resources: set(resources, 'resources', 0, 20).map(resource),
    mailboxTtl: uint(mailboxTtl, 'mailbox_ttl', 3600, 90 * DAY),
    maxListingLifetime: uint(maxListingLifetime, 'max_listing_lifetime', 3600, 90 * DAY),
    limits: new Map(parsedLimits),
    protocols: set(protocols, 'protocols', 1, 8).map((p) => text(p, 'protocol', 32)),
    software: text(software, 'software', 64),
    federation: oneOf(federation, 'federation', ['open', 'allow-list', 'block-list']),
    keys: set(keys, 'keys', 1, 8).map(nodeKey),
    vocabulary: set(vocabulary, 'vocabulary', 0, 200).map((t) => matching(t, 'vocabulary term', 48, VOCAB)),
    // SHA-256 of the web client the node serves (§13.10), or null when it serves none.
    webClient: webClient === null ? null : binary(webClient, 'web_client', 32),
  };
}

function nodeRequest(value) {
  const [method, path, origin, destination, nonce, hash] = array(value, 'node request body', 6);
  oneOf(method, 'method', ['GET', 'POST', 'PUT', 'DELETE']);
  if (!text(path, 'path', 1024).startsWith('/')) throw invalid('path must start with /');
  return {
    method,
    path,
    origin: checkUrl(origin, 'origin'),
    destination: checkUrl(destination, 'destination'),
    nonce: binary(nonce, 'nonce', 16),
    bodyHash: binary(hash, 'body hash', 32),
  };
}

function clientAuth(value) {
  const [node, challenge] = array(value, 'client-auth body', 2);
  return { node: checkUrl(node, 'node'), challenge: binary(challenge, 'challenge', 32) };
}

function move(value) {
  const [fromNode, toNode] = array(value, 'move body', 2);
  checkUrl(fromNode, 'from_node');
  checkUrl(toNode, 'to_node');
  if (fromNode === toNode) throw invalid('a move goes to another node');
  return { fromNode, toNode };
}

// One-time pre-keys a peer gives its home node to hand out (spec §13.5, §14.1): signed under the
// client-auth context and short-lived, so a session token alone cannot fill the stock.
const MAX_PREKEYS = 100;
function prekeys(value) {
  const [node, keys] = array(value, 'prekeys body', 2);
  return { node: checkUrl(node, 'node'), keys: set(keys, 'keys', 1, MAX_PREKEYS).map((k) => binary(k, 'a one-time pre-key', 32)) };
}

export const NODE_BODIES = Object.freeze({
  'node-document': { parse: nodeDocument, maxLifetime: 7 * DAY },
  'node-request': { parse: nodeRequest, maxLifetime: 600 },
  'client-auth': { parse: clientAuth, maxLifetime: 600 },
  move: { parse: move, maxLifetime: 600 },
  prekeys: { parse: prekeys, maxLifetime: 600 },
});

/**
 * The client-auth body a client may sign for a challenge answer (spec §13.4): only when the
 * answer's `node` is byte for byte the URL the client meant. Throws ProtocolError(local.wrong_node)
 * otherwise, or schema.invalid for a malformed URL or challenge.
 */
export function clientAuthFor(meant, named, challenge) {
  checkUrl(meant, 'the node meant');
  if (typeof named !== 'string' || named !== meant) {
    throw new ProtocolError('local.wrong_node', `the challenge is for ${String(named).slice(0, 100)}, not ${meant}`);
  }
  return [meant, binary(challenge, 'challenge', 32)];
}
