// The web client's published hash (spec §13.10, Checking the web client): SHA-256 of a manifest
// that is exactly what `sha256sum` prints for the served files in path order, so anyone can check
// it without this code. A node signs it into its document (§13.2, field 14).

import { sha256 } from '@noble/hashes/sha2.js';
import { toHex } from './crypto.js';
import { invalid } from './errors.js';

const PATH = /^(?:index\.html|assets\/[A-Za-z0-9][A-Za-z0-9._-]{0,127})$/;
const ascii = new TextEncoder();

/**
 * The manifest of `files` (a Map or object of path -> Uint8Array): one `HEX  PATH\n` line per
 * file, ordered by path. Throws ProtocolError(schema.invalid) without an index.html or when a path
 * is not one a node serves.
 */
export function webClientManifest(files) {
  const entries = files instanceof Map ? [...files] : Object.entries(files);
  if (!entries.some(([p]) => p === 'index.html')) throw invalid('a web client has an index.html');
  for (const [p] of entries) {
    if (!PATH.test(p) || p.includes('..')) throw invalid(`${p} is not a file a node serves`);
  }
  // Paths are ASCII, so UTF-16 order is byte order.
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return ascii.encode(entries.map(([p, bytes]) => `${toHex(sha256(bytes))}  ${p}\n`).join(''));
}

/** SHA-256 of the manifest (32 bytes); throws as webClientManifest does. */
export function webClientHash(files) {
  return sha256(webClientManifest(files));
}
