// Checking a node request's Authorization header (spec §13.3, steps 1-4): the steps bytes can show.
// Steps 5 (the key is listed by the origin's own document) and 6 (the nonce is fresh) need the
// receiver's state, so they belong to a node, not to this core.

import { equalBytes } from './crypto.js';
import { CLOCK_SKEW, openSigned } from './envelope.js';
import { ProtocolError } from './errors.js';
import { bodyHash } from './node_bodies.js';

const SCHEME = 'Peerfed-Node ';
// Standard base64 with its padding (RFC 4648 §4), and nothing else.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function strictBase64(text) {
  if (!BASE64.test(text)) throw new ProtocolError('auth.invalid', 'the Peerfed-Node header is not base64');
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/**
 * Check `header` for a request `method` `path` carrying `body` (bytes), received by the node
 * `destination` at `now`, by steps 1-4 of spec §13.3 in order. Returns the opened node-request
 * object. Throws ProtocolError: auth.required, auth.invalid, the codes of §5.5, time.expired.
 */
export function checkNodeRequestHeader(header, { method, path, destination, body, now }) {
  if (typeof header !== 'string' || !header.startsWith(SCHEME)) {
    throw new ProtocolError('auth.required', 'a node request needs an Authorization: Peerfed-Node header');
  }
  const raw = strictBase64(header.slice(SCHEME.length).replace(/^[ \t]+|[ \t]+$/g, ''));
  const env = openSigned(raw, { context: 'peerfed/v1/node-request', now });
  if (env.createdAt < now - CLOCK_SKEW) throw new ProtocolError('time.expired', 'older than the clock window');
  const request = env.body;
  if (request.method !== method || request.path !== path) {
    throw new ProtocolError('auth.invalid', 'the signature is for another method or path');
  }
  if (request.destination !== destination) throw new ProtocolError('auth.invalid', 'signed for another node');
  if (!equalBytes(request.bodyHash, bodyHash(body))) throw new ProtocolError('auth.invalid', 'the body does not match');
  return env;
}
