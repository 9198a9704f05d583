// The strict msgpack profile (spec §2): one encoding per value, nothing else accepted.
//
// Values: null, true/false, integers (a JS number when it is a safe integer, else a BigInt; the
// range is -2^63 .. 2^64-1), strings (well-formed UTF-16 in JS, UTF-8 on the wire), Uint8Array
// for bin, and JS arrays. Maps, floats and extensions do not exist in this profile.
// The decoder reads left to right and reports the first fault with the code spec §2.3 gives it.

import { ProtocolError } from './errors.js';

export const MAX_DEPTH = 8;
const INT_MIN = -(2n ** 63n);
const UINT_MAX = 2n ** 64n - 1n;
// fatal: invalid UTF-8 (overlongs, surrogates, truncated sequences) throws instead of becoming
// U+FFFD; ignoreBOM: a leading U+FEFF is content and must survive a round trip.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const ENCODER = new TextEncoder();
// TextEncoder would turn a lone surrogate into U+FFFD, silently changing the text; such a string
// has no UTF-8 form and is refused. (String.prototype.isWellFormed is missing before Node 20.)
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True for an integer value of this profile (number or BigInt). */
export function isInt(value) {
  return (typeof value === 'number' && Number.isSafeInteger(value)) || typeof value === 'bigint';
}

/** Throws ProtocolError(schema.invalid) for a JS value this profile cannot encode. */
export function pack(value) {
  const out = new Writer();
  write(out, value, 0);
  return out.bytes();
}

class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.len = 0;
  }
  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  byte(b) {
    this.reserve(1);
    this.buf[this.len++] = b;
  }
  uint(value, size) {
    this.reserve(size);
    let v = BigInt(value);
    for (let i = size - 1; i >= 0; i--) {
      this.buf[this.len + i] = Number(v & 0xffn);
      v >>= 8n;
    }
    this.len += size;
  }
  raw(bytes) {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }
  bytes() {
    return this.buf.slice(0, this.len);
  }
}

function header(out, length, fix, fixMax, codes) {
  // codes: [8-bit, 16-bit, 32-bit] type bytes (8-bit may be null: arrays have no 8-bit form).
  if (fix !== null && length <= fixMax) out.byte(fix | length);
  else if (codes[0] !== null && length <= 0xff) {
    out.byte(codes[0]);
    out.uint(length, 1);
  } else if (length <= 0xffff) {
    out.byte(codes[1]);
    out.uint(length, 2);
  } else if (length <= 0xffffffff) {
    out.byte(codes[2]);
    out.uint(length, 4);
  } else throw new ProtocolError('size.too_large', 'a length must fit in 32 bits');
}

function write(out, value, depth) {
  if (value === null) out.byte(0xc0);
  else if (value === false) out.byte(0xc2);
  else if (value === true) out.byte(0xc3);
  else if (isInt(value)) writeInt(out, BigInt(value));
  else if (typeof value === 'string') {
    if (LONE_SURROGATE.test(value)) throw new ProtocolError('schema.invalid', 'a string holds a lone surrogate');
    const bytes = ENCODER.encode(value);
    header(out, bytes.length, 0xa0, 31, [0xd9, 0xda, 0xdb]);
    out.raw(bytes);
  } else if (value instanceof Uint8Array) {
    header(out, value.length, null, -1, [0xc4, 0xc5, 0xc6]);
    out.raw(value);
  } else if (Array.isArray(value)) {
    if (depth >= MAX_DEPTH) throw new ProtocolError('encoding.too_deep', `arrays nest at most ${MAX_DEPTH} deep`);
    header(out, value.length, 0x90, 15, [null, 0xdc, 0xdd]);
    for (const item of value) write(out, item, depth + 1);
  } else {
    throw new ProtocolError('schema.invalid', `cannot encode ${typeof value} in the msgpack profile`);
  }
}

function writeInt(out, v) {
  if (v < INT_MIN || v > UINT_MAX) throw new ProtocolError('schema.invalid', 'integer out of range');
  if (v >= 0n) {
    if (v <= 127n) out.byte(Number(v));
    else if (v <= 0xffn) (out.byte(0xcc), out.uint(v, 1));
    else if (v <= 0xffffn) (out.byte(0xcd), out.uint(v, 2));
    else if (v <= 0xffffffffn) (out.byte(0xce), out.uint(v, 4));
    else (out.byte(0xcf), out.uint(v, 8));
  } else {
    if (v >= -32n) out.byte(Number(v & 0xffn));
    else if (v >= -128n) (out.byte(0xd0), out.uint(v & 0xffn, 1));
    else if (v >= -32768n) (out.byte(0xd1), out.uint(v & 0xffffn, 2));
    else if (v >= -(2n ** 31n)) (out.byte(0xd2), out.uint(v & 0xffffffffn, 4));
    else (out.byte(0xd3), out.uint(v & 0xffffffffffffffffn, 8));
  }
}

/**
 * Decode exactly one canonical value (spec §2.3).
 * Throws ProtocolError: encoding.malformed, .non_canonical, .forbidden_type, .too_deep, .trailing_bytes.
 */
export function unpack(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError('encoding.malformed', 'msgpack input is bytes');
  const reader = { bytes, pos: 0 };
  const value = read(reader, 0);
  if (reader.pos !== bytes.length) throw new ProtocolError('encoding.trailing_bytes', 'bytes remain after the value');
  return value;
}

function take(r, n) {
  if (r.pos + n > r.bytes.length) throw new ProtocolError('encoding.malformed', 'the input ends inside a value');
  const chunk = r.bytes.subarray(r.pos, r.pos + n);
  r.pos += n;
  return chunk;
}

function readUint(r, size) {
  const chunk = take(r, size);
  let v = 0n;
  for (const b of chunk) v = (v << 8n) | BigInt(b);
  return v;
}

function nonCanonical(what) {
  return new ProtocolError('encoding.non_canonical', `${what} is not in its shortest form`);
}

// An integer decodes to a number when safe, else to a BigInt, so equal values always have one JS form.
function intValue(v) {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

// Length-prefixed formats: [size of the length, the smallest length this format may hold].
const STR = { 0xd9: [1, 32], 0xda: [2, 256], 0xdb: [4, 65536] };
const BIN = { 0xc4: [1, 0], 0xc5: [2, 256], 0xc6: [4, 65536] };
const ARR = { 0xdc: [2, 16], 0xdd: [4, 65536] };
const UINT = { 0xcc: [1, 128n], 0xcd: [2, 256n], 0xce: [4, 65536n], 0xcf: [8, 2n ** 32n] };
// Signed formats: [size, the largest value this format may hold (anything above fits a shorter one)].
const SINT = { 0xd0: [1, -33n], 0xd1: [2, -129n], 0xd2: [4, -32769n], 0xd3: [8, -(2n ** 31n) - 1n] };

function isForbidden(t) {
  return (t >= 0x80 && t <= 0x8f) || t === 0xde || t === 0xdf || t === 0xca || t === 0xcb ||
    (t >= 0xc7 && t <= 0xc9) || (t >= 0xd4 && t <= 0xd8);
}

function readLength(r, spec, what) {
  const [size, min] = spec;
  const n = Number(readUint(r, size));
  if (n < min) throw nonCanonical(what);
  return n;
}

function readStr(r, n) {
  const chunk = take(r, n);
  try {
    return UTF8.decode(chunk);
  } catch {
    throw new ProtocolError('encoding.malformed', 'a str is not valid UTF-8');
  }
}

function readArray(r, n, depth) {
  if (depth >= MAX_DEPTH) throw new ProtocolError('encoding.too_deep', `arrays nest at most ${MAX_DEPTH} deep`);
  const items = [];
  for (let i = 0; i < n; i++) items.push(read(r, depth + 1));
  return items;
}

function read(r, depth) {
  const t = take(r, 1)[0];
  if (t <= 0x7f) return t;
  if (t >= 0xe0) return t - 256;
  if (t >= 0xa0 && t <= 0xbf) return readStr(r, t & 0x1f);
  if (t >= 0x90 && t <= 0x9f) return readArray(r, t & 0x0f, depth);
  if (t === 0xc0) return null;
  if (t === 0xc2) return false;
  if (t === 0xc3) return true;
  if (t === 0xc1) throw new ProtocolError('encoding.malformed', 'the byte c1 is never valid');
  if (isForbidden(t)) throw new ProtocolError('encoding.forbidden_type', 'maps, floats and extensions are forbidden');
  if (t in UINT) {
    const [size, min] = UINT[t];
    const v = readUint(r, size);
    if (v < min) throw nonCanonical('an integer');
    return intValue(v);
  }
  if (t in SINT) {
    const [size, max] = SINT[t];
    const raw = readUint(r, size);
    const bits = BigInt(size * 8);
    const v = raw >= 1n << (bits - 1n) ? raw - (1n << bits) : raw;
    if (v > max) throw nonCanonical('an integer');
    return intValue(v);
  }
  if (t in STR) return readStr(r, readLength(r, STR[t], 'a str length'));
  if (t in BIN) return take(r, readLength(r, BIN[t], 'a bin length')).slice();
  if (t in ARR) return readArray(r, readLength(r, ARR[t], 'an array length'), depth);
  throw new ProtocolError('encoding.malformed', `unknown type byte ${t}`);
}
