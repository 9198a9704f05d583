// Reports to one's own node (spec §13.5 Reports, §12 "What a disclosure reveals"): a listing or a
// peer, a reason, and, only if the person chooses it, what the other side sent in one conversation
// (never anything the person wrote). `GET /reports` shows what the moderators did. No DOM here.

import { decodeVerified, equalBytes, peerIdText } from '../protocol/index.js';
import { call } from './node.js';

const INNER = { context: 'peerfed/v1/sealed-inner' };
// The reference node takes at most 20 disclosed messages in one report, and only unexpired ones.
export const MAX_DISCLOSED = 20;

function base64Of(bytes) {
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

/**
 * The signed messages the other side sent in `conversation` that a report may show (spec §12):
 * theirs only, unexpired at `now`, the latest MAX_DISCLOSED of them. Raw signed bytes.
 */
export function disclosable(conversation, me, now) {
  const theirs = [];
  for (const raw of conversation.events ?? []) {
    const env = decodeVerified(raw, INNER);
    if (!equalBytes(env.author, me) && env.expiresAt > now) theirs.push(raw);
  }
  return theirs.slice(-MAX_DISCLOSED);
}

/**
 * Send a report to the home node: `target` is { peer: Uint8Array } or { listing: hex id };
 * `disclosed` the raw messages chosen (may be empty). Returns { id, status }. Throws NodeError.
 */
export async function sendReport(ctx, target, reason, disclosed = []) {
  const body = {
    target: target.peer ? peerIdText(target.peer) : target.listing,
    reason,
    disclosed: disclosed.map(base64Of),
  };
  return call(ctx.url, '/api/v1/reports', {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' },
    token: ctx.token,
  });
}

/** This person's own reports, oldest first: [{ id, target_kind, target, status, outcome, created_at }]. Throws NodeError. */
export async function myReports(ctx) {
  const answer = await call(ctx.url, '/api/v1/reports', { token: ctx.token });
  return Array.isArray(answer.reports) ? answer.reports.filter((r) => r && typeof r === 'object') : [];
}
