// Searching topics by words (spec §6.4): fold, split at separators, match whole words. The same
// definition as the node's, so the browser can check that every listing a node answered matches.

import { ProtocolError } from './errors.js';

export const MAX_QUERY_WORDS = 8;

// General categories that separate words: white space, controls, punctuation, and the symbols
// people type as punctuation (Sm, Sc, Sk). Other symbols (So: emoji) and Cf stay inside words.
const SEPARATOR = /[\p{Zs}\p{Zl}\p{Zp}\p{Cc}\p{Pc}\p{Pd}\p{Ps}\p{Pe}\p{Pi}\p{Pf}\p{Po}\p{Sm}\p{Sc}\p{Sk}]/u;

/**
 * Full case folding (CaseFolding.txt C + F) of one code point. JavaScript has no case folding;
 * upper- then lower-casing one code point at a time gives it (one at a time, so the Final_Sigma
 * rule of toLowerCase never applies), except where folding is not "the lower case of the upper
 * case": dotless ı stays ı, capital sharp ẞ folds to ss, and Cherokee folds to its capitals.
 */
function foldCodePoint(char) {
  const cp = char.codePointAt(0);
  if (cp === 0x131) return char;
  if (cp === 0x1e9e) return 'ss';
  if (cp >= 0x13a0 && cp <= 0x13f5) return char;
  if (cp >= 0x13f8 && cp <= 0x13fd) return String.fromCodePoint(cp - 8);
  if (cp >= 0xab70 && cp <= 0xabbf) return String.fromCodePoint(cp - 0xab70 + 0x13a0);
  return char.toUpperCase().toLowerCase();
}

/** Unicode full case folding, no normalisation (spec §6.4 step 1). */
export function fold(text) {
  let out = '';
  for (const char of text) out += foldCodePoint(char);
  return out;
}

/** The words of a topic or a query, in order, repeats kept (spec §6.4 step 2). */
export function words(text) {
  const found = [];
  let run = '';
  for (const char of fold(text)) {
    if (SEPARATOR.test(char)) {
      if (run) found.push(run);
      run = '';
    } else {
      run += char;
    }
  }
  if (run) found.push(run);
  return found;
}

/**
 * Each query's distinct words, as Sets. Throws ProtocolError request.invalid if a query has no
 * word, or all of them together more than MAX_QUERY_WORDS.
 */
export function queryWords(queries) {
  const parsed = queries.map((query) => new Set(words(query)));
  if (parsed.some((query) => query.size === 0)) {
    throw new ProtocolError('request.invalid', 'a topic search needs at least one word');
  }
  if (parsed.reduce((sum, query) => sum + query.size, 0) > MAX_QUERY_WORDS) {
    throw new ProtocolError('request.invalid', `a topic search has at most ${MAX_QUERY_WORDS} words`);
  }
  return parsed;
}

/** Whether `topic` holds every word of `query` (a Set from queryWords), each whole. */
export function topicMatches(topic, query) {
  const held = new Set(words(topic));
  for (const word of query) if (!held.has(word)) return false;
  return true;
}

/** Whether a listing with `topics` meets every query (Sets from queryWords), each by one topic. */
export function listingMatches(topics, queries) {
  return queries.every((query) => topics.some((topic) => topicMatches(topic, query)));
}
