// Reading a node's signed document as a client does (spec §13.2): open it, then check that its
// signing key is listed and valid now and that its url is exactly the URL it was fetched from.

import { equalBytes } from './crypto.js';
import { ProtocolError } from './errors.js';
import { openSigned } from './envelope.js';

/**
 * Open a node document fetched from `url` at `now`. Returns the opened object (its `body` holds
 * the resources, limits and keys). Throws the §5.5 codes of a bad object, or
 * ProtocolError(federation.refused) when the key is not listed as valid now or the url differs.
 */
export function openNodeDocument(bytes, { url, now }) {
  const doc = openSigned(bytes, { context: 'peerfed/v1/node-document', now });
  const listed = doc.body.keys.some((k) => equalBytes(k.key, doc.author) && k.validFrom <= now && now < k.validUntil);
  if (!listed) throw new ProtocolError('federation.refused', 'the document is not signed by a key it lists as valid now');
  if (doc.body.url !== url) throw new ProtocolError('federation.refused', `the document names ${doc.body.url}, not ${url}`);
  return doc;
}
