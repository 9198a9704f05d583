// Listings from the browser (spec §6.2, §13.5): build the wire body of an offer or a request from
// what a person typed, sign it here and publish it; search the node's directory and keep only
// results whose signed bytes verify here (the node's `card` is never trusted). No DOM.

import { BODIES, FORMATS, openSigned, ProtocolError, sign, toHex } from '../protocol/index.js';
import { base64, call, NodeError } from './node.js';

/** How long a listing lives unless the node allows less: 30 days. */
export const LISTING_LIFETIME = 30 * 86_400;
/** Monday first, as the bit mask of spec §6.2 counts them (bit 0 = Monday). */
export const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

/** Split what a person typed into a list of labels: by commas, trimmed, empties and repeats dropped. */
export function words(typed) {
  const seen = new Set();
  for (const part of String(typed).split(',')) {
    const word = part.trim().replace(/\s+/gu, ' ');
    if (word) seen.add(word);
  }
  return [...seen];
}

/** Minutes after midnight from an `<input type=time>` value "HH:MM"; null when empty or malformed. */
export function minutes(hhmm) {
  const match = /^(\d{2}):(\d{2})$/.exec(hhmm ?? '');
  if (!match) return null;
  return Number(match[1]) * 60 + Number(match[2]);
}

/**
 * The wire body of a listing (spec §6.2) from a form's values:
 * { kind, topics: [..], languages: [..], formats: [..], tz, days: [0..6], from: "HH:MM", until: "HH:MM",
 *   timing, capacity, area, summary }. Throws ProtocolError(schema.invalid) when a field is not valid,
 * with a message naming the field.
 */
export function listingBody(values) {
  const mask = (values.days ?? []).reduce((bits, day) => bits | (1 << day), 0);
  const start = minutes(values.from);
  const end = values.until === '00:00' ? 1440 : minutes(values.until);
  const availability = mask && start !== null && end !== null ? [[mask, start, end]] : [];
  if (mask && availability.length === 0) throw new ProtocolError('schema.invalid', 'availability needs a start and an end time');
  const body = [
    values.kind,
    values.topics,
    [],
    values.languages,
    FORMATS.filter((f) => values.formats.includes(f)),
    values.tz,
    availability,
    values.timing,
    values.capacity ?? 1,
    values.area ? values.area : null,
    values.summary,
  ];
  BODIES.listing.parse(body);
  return body;
}

/**
 * Sign `body` as the holder of `seed` and publish it on `url` (POST /listings); returns its id as hex.
 * Its lifetime is 30 days or the node's `max_listing_lifetime` if shorter.
 * Throws ProtocolError for an invalid body, NodeError for a refusal.
 */
export async function publishListing(url, token, seed, body, { now, maxLifetime = LISTING_LIFETIME }) {
  const signed = sign(seed, 'listing', body, { createdAt: now, expiresAt: now + Math.min(LISTING_LIFETIME, maxLifetime) });
  const answer = await call(url, '/api/v1/listings', {
    method: 'POST',
    body: signed.raw,
    headers: { 'Content-Type': 'application/octet-stream' },
    token,
  });
  if (answer.id !== toHex(signed.id)) throw new NodeError('schema.invalid', 'the node named another listing id');
  return answer.id;
}

/**
 * Take the person's own `listing` down everywhere (spec §6.3): sign a withdrawal of its id, living
 * as long as the listing would have (at least a minute), and hand it to the node (POST /listings),
 * which deletes it and tells every node it federates with. Throws NodeError for a refusal.
 */
export async function withdrawListing(url, token, seed, listing, { now }) {
  const signed = sign(seed, 'withdrawal', [listing.idBytes], { createdAt: now, expiresAt: Math.max(listing.expiresAt, now + 60) });
  await call(url, '/api/v1/listings', {
    method: 'POST',
    body: signed.raw,
    headers: { 'Content-Type': 'application/octet-stream' },
    token,
  });
}

function verified(result, now) {
  try {
    const env = openSigned(base64(result.listing), { context: 'peerfed/v1/envelope', now });
    if (env.type !== 'listing') return null;
    const keyBundle = typeof result.key_bundle === 'string' ? base64(result.key_bundle) : null;
    return { id: toHex(env.id), idBytes: env.id, keyBundle, author: env.author, createdAt: env.createdAt, expiresAt: env.expiresAt, origin: result.origin, ...env.body };
  } catch {
    return null; // a result that does not verify is left out, whatever its card says
  }
}

/**
 * Live listings from the directory of `url` matching `filters` ({ kind, topic, lang, format }, each
 * optional), newest first: each verified here, as { id, author, kind, topics, languages, formats, tz,
 * availability, timing, capacity, area, summary, origin, ... }, plus how many results were left out.
 * Throws NodeError when the node refuses or answers garbage.
 */
export async function searchDirectory(url, token, filters, { now, limit = 50 }) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
  query.set('limit', String(limit));
  const answer = await call(url, `/api/v1/directory?${query}`, { token });
  if (!Array.isArray(answer.listings)) throw new NodeError('schema.invalid', 'the directory sent no list');
  const listings = answer.listings.map((result) => (result && typeof result === 'object' ? verified(result, now) : null));
  return { listings: listings.filter(Boolean), leftOut: listings.filter((l) => !l).length };
}
