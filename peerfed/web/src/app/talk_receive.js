// Mail that arrives (spec §7.3, §9.2, §14.5 steps 8-9): a sealed mailbox item opened with either
// scheme, applied through the connection rules, and a scheme-2 session kept only once they took
// its message. The receiving half of talk.js's Talk, which it is given; no DOM here.

import {
  acceptOpened2, Connection, equalBytes, openSealed, openSealed2, parseSealed, reacherBundle, SCHEME_V2, toHex,
} from '../protocol/index.js';
import { NodeError } from './node.js';
import { topUpFor } from './sessions.js';
import { eraseWords, forgetDue } from './talk_state.js';

export const PENDING_REACH_OUTS_CAP = 20;
export const PENDING_PER_SENDER_CAP = 3;

/** Open and apply one sealed mailbox item; anything that does not open or apply is dropped (spec §7.3, §9.2). */
export function receive(talk, sealedBytes, viewing) {
  let opened;
  let scheme2;
  try {
    scheme2 = parseSealed(sealedBytes).payload[0] === SCHEME_V2;
    opened = scheme2 ? open2(talk, sealedBytes) : openSealed(sealedBytes, { recipient: talk.me, secrets: talk.ctx.keys.encryption.map((k) => k.secret), now: talk.ctx.now() });
  } catch {
    return;
  }
  const { inner, bundle } = opened;
  if (talk.blocked.has(toHex(inner.author))) return;
  // What the §9.2 rules make of it; a scheme-2 message must also be one its session may carry.
  let taken;
  try {
    taken = scheme2 ? acceptOpened2(opened, talk.conversations.get(toHex(inner.body.connection))?.state ?? null) : null;
  } catch {
    return;
  }
  const id = toHex(inner.body.connection);
  if (inner.type === 'reach-out') {
    if (talk.conversations.has(id)) return;
    // One person cannot flood another: past either cap a new reach-out is dropped unseen, and
    // answering one (or its expiry) makes room (spec §12, §13.5).
    talk.forgetLapsed();
    const waiting = talk.pending();
    if (waiting.length >= PENDING_REACH_OUTS_CAP) return;
    if (waiting.filter((c) => equalBytes(c.peer, inner.author)).length >= PENDING_PER_SENDER_CAP) return;
    const other = { encryptionKey: bundle.body.encryptionKey, home: bundle.body.home, name: bundle.body.pseudonym };
    const conversation = {
      id, state: taken ? taken.connection : Connection.start(inner), events: [inner.raw], other, peer: inner.author, mine: false,
      hello: inner.body.hello, offered: inner.body.terms, reply: null, topics: null, messages: [], unread: 1, nextSeq: 1,
    };
    talk.conversations.set(id, conversation);
    keepSession(talk, id, opened, taken);
    talk.changed(conversation);
    return;
  }
  const conversation = talk.conversations.get(id);
  if (!conversation) return;
  try {
    conversation.state = taken ? taken.connection : conversation.state.apply(inner);
  } catch {
    return;
  }
  keepSession(talk, id, opened, taken);
  if (conversation.state.state === 'ended' || conversation.state.state === 'declined') talk.dropSession(id);
  conversation.events.push(inner.raw);
  if (inner.type === 'response') conversation.reply = inner.body.reply;
  if (inner.type === 'end' && inner.body.erase) eraseWords(conversation); // a compliant client deletes (§9.4)
  if (inner.type === 'message') conversation.messages.push({ mine: false, seq: inner.body.seq, text: inner.body.text, createdAt: inner.createdAt });
  forgetDue(conversation, talk.ctx.now()); // one that arrives already past its agreed time goes at once (§9.7)
  if (viewing !== id) conversation.unread += 1;
  talk.changed(conversation);
}

// Open a scheme-2 message with this device's sessions and pre-key secrets (spec §14.5); as
// openSealed's answer, with the opening kept for acceptOpened2. Throws ProtocolError.
function open2(talk, sealedBytes) {
  const held = talk.secrets;
  if (held === null) throw new NodeError('ratchet.no_session', 'the sessions are not loaded yet');
  const opened = openSealed2(sealedBytes, {
    recipient: talk.me,
    secrets: talk.ctx.keys.encryption.map((k) => k.secret),
    signedPrekeys: held.signed.map((s) => s.secret),
    oneTimePrekeys: held.oneTime,
    sessions: held.sessions,
    now: talk.ctx.now(),
  });
  return { ...opened, bundle: opened.inner.type === 'reach-out' ? reacherBundle(opened.inner) : null };
}

// The rules took the message: a scheme-2 one moves (or starts) its session, which is kept only
// now, and its one-time pre-key's secret goes (spec §14.5 steps 8-9); a scheme-1 one on a
// connection with a session ends that session (R-14.5-2).
function keepSession(talk, id, opened, taken) {
  if (!taken) {
    talk.dropSession(id);
    return;
  }
  talk.secrets.sessions.set(id, taken.session);
  if (opened.oneTimeUsed === null) return;
  talk.secrets.forgetOneTime(opened.oneTimeUsed);
  topUpFor(talk); // the node's stock went down by one: checked now, as at every sync (§13.5)
}
