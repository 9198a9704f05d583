// Checking a sign-in proof as a node does (spec §13.4): the proof opens, and names this node. The
// rest of §13.4 (proof of work, the challenge being live and unused, the registration policy)
// needs the node's state.

import { openSigned } from './envelope.js';
import { ProtocolError } from './errors.js';

/**
 * Open `proof` (bytes) as the node whose URL is `node` would at `now`. Returns the opened object.
 * Throws ProtocolError: the §5.5 codes under peerfed/v1/client-auth, then auth.invalid for a move
 * or a proof naming another node.
 */
export function openSignIn(proof, { node, now }) {
  const env = openSigned(proof, { context: 'peerfed/v1/client-auth', now });
  if (env.type !== 'client-auth') throw new ProtocolError('auth.invalid', 'send a client-auth proof');
  if (env.body.node !== node) throw new ProtocolError('auth.invalid', `the proof is for ${env.body.node}, not this node`);
  return env;
}
