// Bodies of signed objects, one parser per type (spec §4.3, §6, §8, §13): each takes the decoded
// body array and returns a plain object, or throws ProtocolError(schema.invalid).
// Field order is the spec's. Node bodies are in node_bodies.js.

import { invalid } from './errors.js';
import { pack } from './encoding.js';
import {
  array, binary, boolean, FORMATS, LANG, matching, MAX_TIMESTAMP, oneOf, optText, set, text, TZ, uint, VOCAB,
} from './fields.js';
import { NODE_BODIES } from './node_bodies.js';

const DAY = 86_400;
export const MIN_BUNDLE_BYTES = 98;
export const MAX_BUNDLE_BYTES = 1024;
// How long after it was sent each device keeps a message when the terms say to forget (spec §8.3).
export const MIN_FORGET = 3600;
export const MAX_FORGET = 365 * DAY;

function window(value) {
  const [days, start, end] = array(value, 'window', 3);
  uint(days, 'window days', 1, 127);
  uint(start, 'window start', 0, 1439);
  uint(end, 'window end', 1, 1440);
  if (start >= end) throw invalid('a window must start before it ends');
  return { days, start, end };
}

function listing(value) {
  const [kind, topics, vocab, languages, formats, tz, availability, timing, capacity, area, summary] =
    array(value, 'listing body', 11);
  return {
    kind: oneOf(kind, 'kind', ['offer', 'request']),
    topics: set(topics, 'topics', 1, 8).map((t) => text(t, 'topic', 48)),
    vocab: set(vocab, 'vocab', 0, 8).map((t) => matching(t, 'vocabulary term', 48, VOCAB)),
    languages: set(languages, 'languages', 1, 8).map((t) => matching(t, 'language', 35, LANG)),
    formats: set(formats, 'formats', 1, 5).map((f) => oneOf(f, 'format', FORMATS)),
    tz: matching(tz, 'time zone', 64, TZ),
    availability: set(availability, 'availability', 0, 14).map(window),
    timing: oneOf(timing, 'timing', ['now', 'soon', 'scheduled']),
    capacity: uint(capacity, 'capacity', 1, 100),
    area: optText(area, 'area', 64),
    summary: text(summary, 'summary', 600, true),
  };
}

function withdrawal(value) {
  const [id] = array(value, 'withdrawal body', 1);
  return { listing: binary(id, 'listing id', 32) };
}

function keyBundle(value) {
  // Three items, or four with the signed pre-key of sealing scheme 2 (spec §4.3, §14.1).
  const items = Array.isArray(value) && value.length === 4 ? value : array(value, 'key bundle body', 3);
  const [key, home, pseudonym] = items;
  binary(key, 'encryption key', 32);
  if (optText(home, 'home node', 256) !== null && !home.startsWith('https://') && !home.startsWith('http://')) {
    throw invalid('the home node is an http(s) URL');
  }
  const prekey = items.length === 4 ? binary(items[3], 'signed pre-key', 32) : null;
  if (prekey !== null && prekey.every((b, i) => b === key[i])) throw invalid('the signed pre-key must differ from the encryption key');
  return { encryptionKey: key, home, pseudonym: optText(pseudonym, 'pseudonym', 64), prekey };
}

function erasure(value) {
  array(value, 'erasure body', 0);
  return {};
}

/** Terms (spec §8.3); `encoded` is their canonical encoding, which decides identity (§9.3). */
export function terms(value) {
  // Six items, or seven when the peers agree to forget (spec §8.3): the seventh is never nil, so
  // terms without it keep their one encoding.
  const seven = Array.isArray(value) && value.length === 7;
  const [helps, formats, times, until, boundaries, ending, forget] = seven ? value : array(value, 'terms', 6);
  return {
    helps: text(helps, 'what helps', 1000, true),
    formats: set(formats, 'formats', 0, 5).map((f) => oneOf(f, 'format', FORMATS)),
    times: optText(times, 'times', 300, true),
    until: until === null ? null : uint(until, 'until', 0, MAX_TIMESTAMP),
    boundaries: set(boundaries, 'boundaries', 0, 10).map((b) => text(b, 'boundary', 300, true)),
    ending: optText(ending, 'how to end', 300, true),
    forget: seven ? uint(forget, 'forget', MIN_FORGET, MAX_FORGET) : null,
    encoded: pack(value),
  };
}

function head(value, name, rest) {
  const items = array(value, name, rest + 2);
  return [binary(items[0], 'recipient', 32), binary(items[1], 'connection id', 16), items.slice(2)];
}

function reachOut(value) {
  // A five-item body is a reach-out stored before bundles were carried (spec §8.1): it decodes,
  // for a device's own history, and opening a sealed one refuses it (§7.3 step 12).
  const legacy = Array.isArray(value) && value.length === 5;
  const [recipient, connection, [listingId, hello, proposed, bundle = null]] =
    head(value, 'reach-out body', legacy ? 3 : 4);
  if (!legacy && !(bundle instanceof Uint8Array && bundle.length >= MIN_BUNDLE_BYTES && bundle.length <= MAX_BUNDLE_BYTES)) {
    throw invalid(`a reach-out carries its author's signed key bundle, ${MIN_BUNDLE_BYTES} to ${MAX_BUNDLE_BYTES} bytes`);
  }
  return {
    recipient,
    connection,
    listing: binary(listingId, 'listing id', 32),
    hello: text(hello, 'hello', 1000, true),
    terms: proposed === null ? null : terms(proposed),
    bundle,
  };
}

function response(value) {
  const [recipient, connection, [accept, reply]] = head(value, 'response body', 2);
  boolean(accept, 'accept');
  optText(reply, 'reply', 1000, true);
  if (!accept && reply !== null) throw invalid('a decline carries no text');
  return { recipient, connection, accept, reply };
}

function agreement(value) {
  const [recipient, connection, [version, proposed]] = head(value, 'agreement body', 2);
  return { recipient, connection, version: uint(version, 'agreement version', 1, 2 ** 32 - 1), terms: terms(proposed) };
}

function message(value) {
  const [recipient, connection, [seq, replyTo, body]] = head(value, 'message body', 3);
  return {
    recipient,
    connection,
    seq: uint(seq, 'seq', 1, 2 ** 32 - 1),
    replyTo: replyTo === null ? null : binary(replyTo, 'reply_to', 32),
    text: text(body, 'text', 16_000, true),
  };
}

function end(value) {
  const [recipient, connection, [erase]] = head(value, 'end body', 1);
  return { recipient, connection, erase: boolean(erase, 'erase') };
}

/** Every body type: its parser and its maximum lifetime in seconds (spec §5.3). */
export const BODIES = Object.freeze({
  listing: { parse: listing, maxLifetime: 90 * DAY },
  withdrawal: { parse: withdrawal, maxLifetime: 90 * DAY },
  erasure: { parse: erasure, maxLifetime: 90 * DAY },
  'key-bundle': { parse: keyBundle, maxLifetime: 365 * DAY },
  'reach-out': { parse: reachOut, maxLifetime: 30 * DAY },
  response: { parse: response, maxLifetime: 30 * DAY },
  agreement: { parse: agreement, maxLifetime: 30 * DAY },
  message: { parse: message, maxLifetime: 30 * DAY },
  end: { parse: end, maxLifetime: 30 * DAY },
  ...NODE_BODIES,
});
