// Terms in a conversation (spec §8.3, §9.3): what was proposed in the current round, by whom and
// until when; the terms in force; and whether they lapsed. Read from the connection's own state,
// which both devices reach from the same signed agreements. No DOM here (terms_view.js shows it).

import { fromHex, terms, unpack } from '../protocol/index.js';

/** Which side this device is in `conversation`: 'reacher' or 'author'. */
export function mySide(conversation) {
  return conversation.mine ? 'reacher' : 'author';
}

const parsed = (hex) => terms(unpack(fromHex(hex)));

/**
 * Where the terms of `conversation` stand at `now` (Unix seconds):
 * { inForce: { version, terms, lapsed } | null, proposal: { version, by: 'me'|'them', terms, lapsed } | null,
 *   unresolved: boolean, round }. `unresolved` is a round both signed with different terms (§9.3):
 * either side goes on by proposing the next round. Lapsed terms stay in force (§9.2): they are only shown as lapsed.
 */
export function termsState(conversation, now) {
  const s = conversation.state;
  const lapsed = (t) => t.until !== null && t.until < now;
  const inForce = s.inForce ? { version: s.inForce.version, terms: s.inForce.terms, lapsed: lapsed(s.inForce.terms) } : null;
  const round = s.roundTerms ?? [];
  let proposal = null;
  if (round.length === 1) {
    const t = parsed(round[0][1]);
    proposal = { version: s.round, by: round[0][0] === mySide(conversation) ? 'me' : 'them', terms: t, lapsed: lapsed(t) };
  }
  return { inForce, proposal, unresolved: round.length === 2 && round[0][1] !== round[1][1], round: s.round ?? 0 };
}

/**
 * The agreement body items [version, terms] that answer `conversation` now: with `proposed` (a
 * terms wire array) a new round (or a countersignature when it is identical to their proposal,
 * as the CLI does); without, a countersignature of the other side's proposal. Throws an Error with
 * code local.not_allowed when there is nothing to countersign.
 */
export function agreementItems(conversation, proposed, now) {
  const { proposal, round } = termsState(conversation, now);
  const theirs = proposal && proposal.by === 'them' ? proposal.terms : null;
  if (proposed === null || proposed === undefined) {
    if (!theirs) throw Object.assign(new Error('there are no proposed terms to agree to'), { code: 'local.not_allowed' });
    return [round, unpack(theirs.encoded)];
  }
  terms(proposed); // refuses terms the other side would refuse (spec §8.3)
  if (theirs && sameTerms(theirs.encoded, proposed)) return [round, proposed];
  return [round + 1, proposed];
}

function sameTerms(encoded, proposed) {
  const other = terms(proposed).encoded;
  return encoded.length === other.length && encoded.every((b, i) => b === other[i]);
}

/**
 * Terms as sent on the wire (spec §8.3) from what a person typed; empty optional fields become nil.
 * `forget` (seconds) adds the seventh item; without it the terms are the six items they always were.
 */
export function termsFromForm({ helps, formats = [], times = '', until = null, boundaries = [], ending = '', forget = null }) {
  const opt = (s) => (s && s.trim() ? s.trim() : null);
  const lines = [...new Set(boundaries.map((b) => b.trim()).filter(Boolean))];
  const six = [helps.trim(), [...new Set(formats)], opt(times), until, lines, opt(ending)];
  return forget === null ? six : [...six, forget];
}

// How long after it was sent each message may be kept (spec §8.3, §9.7): the terms form offers
// these, as the CLI's `--forget 1d`, `7d`, `30d` and `365d`.
const FORGET_DAYS = [1, 7, 30, 365];
const FORGET_MIN = 3600;
const FORGET_MAX = 31_536_000;

/**
 * The `forget` values (seconds) the terms form offers, shortest first: 1, 7, 30 and 365 days, and
 * `current` (what the terms being changed say) when it is none of those, so changing other terms
 * keeps it unless the person picks another.
 */
export function forgetChoices(current = null) {
  const offered = FORGET_DAYS.map((days) => days * 86_400);
  return current === null || offered.includes(current) ? offered : [...offered, current].sort((a, b) => a - b);
}

/**
 * What the terms form's choice means: '' keeps the messages (null, no `forget`), anything else is
 * seconds. Throws an Error with code local.usage outside 1 hour…365 days (spec §8.3).
 */
export function forgetFromChoice(value) {
  if (value === '' || value === null || value === undefined) return null;
  const seconds = Number(value);
  if (!Number.isInteger(seconds) || seconds < FORGET_MIN || seconds > FORGET_MAX) {
    throw Object.assign(new Error('forget must be between 1 hour and 365 days'), { code: 'local.usage' });
  }
  return seconds;
}

/** 'YYYY-MM-DD' -> the last second of that day, UTC, as the CLI reads --until; null for ''. */
export function untilFromDate(text) {
  if (!text) return null;
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) throw Object.assign(new Error('not a date'), { code: 'local.usage' });
  return Math.floor(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]), 23, 59, 59) / 1000);
}
