// Proof of work off the page's main thread (spec §13.5 first contact): the page posts
// { challenge, bits } and gets back the nonce, so typing and screen readers stay responsive.

import { solveWork } from '../protocol/work.js';

self.onmessage = (event) => {
  const { challenge, bits } = event.data;
  self.postMessage(solveWork(challenge, bits));
};
