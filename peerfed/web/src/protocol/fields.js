// Field rules shared by every body (spec §6.1): labels, free text, sets, integers, binary.
// Each check returns the value when allowed and throws ProtocolError(schema.invalid) otherwise.

import { invalid } from './errors.js';
import { isInt, pack } from './encoding.js';
import { toHex } from './crypto.js';

export const LANG = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/;
export const VOCAB = /^[a-z0-9]+(-[a-z0-9]+)*$/;
export const TZ = /^[A-Za-z0-9_+\-/]+$/;
export const FORMATS = ['text', 'voice', 'video', 'in-person', 'sign'];
export const MAX_TIMESTAMP = 2 ** 40 - 1;

// Controls U+0000-U+001F and U+007F-U+009F; free text may hold tab and line feed.
const LABEL_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f]/u;
const FREE_FORBIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/u;
const SPACE = '\u0020\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';
const ENCODER = new TextEncoder();

/** A non-empty str of at most maxBytes UTF-8 bytes: a label, or free text when `free`. */
export function text(value, name, maxBytes, free = false) {
  if (typeof value !== 'string') throw invalid(`${name} must be a string`);
  const size = ENCODER.encode(value).length;
  if (size < 1 || size > maxBytes) throw invalid(`${name} must be 1 to ${maxBytes} UTF-8 bytes`);
  if ((free ? FREE_FORBIDDEN : LABEL_FORBIDDEN).test(value)) throw invalid(`${name} holds a control character`);
  if (!free && (SPACE.includes(value[0]) || SPACE.includes(value[value.length - 1]))) {
    throw invalid(`${name} has white space at its start or end`);
  }
  return value;
}

export function optText(value, name, maxBytes, free = false) {
  return value === null ? null : text(value, name, maxBytes, free);
}

/** An integer low..high (a JS number; the bounds used here are all below 2^53). */
export function uint(value, name, low, high) {
  if (!isInt(value) || typeof value !== 'number' || value < low || value > high) {
    throw invalid(`${name} must be an integer from ${low} to ${high}`);
  }
  return value;
}

export function binary(value, name, size) {
  if (!(value instanceof Uint8Array) || value.length !== size) throw invalid(`${name} must be ${size} bytes of binary`);
  return value;
}

export function boolean(value, name) {
  if (typeof value !== 'boolean') throw invalid(`${name} must be a boolean`);
  return value;
}

/** A set: an array of low..high items, all different as encoded values (spec §6.1). */
export function set(value, name, low, high) {
  if (!Array.isArray(value)) throw invalid(`${name} must be an array`);
  if (value.length < low || value.length > high) throw invalid(`${name} must hold ${low} to ${high} items`);
  const seen = new Set(value.map((item) => toHex(pack(item))));
  if (seen.size !== value.length) throw invalid(`${name} holds the same item twice`);
  return value;
}

/** An array of exactly `length` items. */
export function array(value, name, length) {
  if (!Array.isArray(value) || value.length !== length) throw invalid(`${name} must be an array of ${length} items`);
  return value;
}

export function oneOf(value, name, allowed) {
  if (typeof value !== 'string' || !allowed.includes(value)) throw invalid(`${name} must be one of: ${allowed.join(', ')}`);
  return value;
}

export function matching(value, name, maxBytes, pattern) {
  text(value, name, maxBytes);
  // The patterns are ASCII-only; a JS regex without the `i` or `u` flag matches code units,
  // so no non-ASCII character can satisfy them.
  if (!pattern.test(value)) throw invalid(`${name} does not match its pattern`);
  return value;
}
