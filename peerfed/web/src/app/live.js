// The live mailbox (spec §13.5 Live mailbox, §13.4 One device at a time, §9.5 Offline first):
// items are opened as they come and acknowledged only once handled and stored; a dropped socket is
// reconnected after 0.5 s, then twice as long after each further failure, at most 30 s, as the
// CLI's live reader does, and catches up from the mailbox (what was not acknowledged comes again,
// and a repeat is refused by the state machine, so nothing is lost or doubled). An `auth.moved`
// stops it for good; an expired session is reopened first.

import { base64, moved } from './node.js';
import { topUpFor } from './sessions.js';

const FIRST_WAIT = 500;
const LONGEST_WAIT = 30_000;

/** The wait before reconnect attempt `failures` (1, 2, ...), in milliseconds. */
export function backoff(failures) {
  return Math.min(LONGEST_WAIT, FIRST_WAIT * 2 ** Math.max(0, failures - 1));
}

/**
 * Keep a live connection for `talk` until stopped. `viewing()` names the conversation on screen;
 * `status(state)` hears 'live', 'lost' (with the wait in ms) and 'back'; `renew()` reopens the
 * session and resolves to the new token. Returns `{ stop() }`.
 */
export function openLive(talk, viewing, { status = () => {}, renew } = {}) {
  const ctx = talk.ctx;
  let stopped = false;
  let failures = 0;
  let socket = null;
  let timer = null;
  let wasLost = false;

  const connect = () => {
    if (stopped) return;
    const ws = new WebSocket(`${ctx.url.replace(/^http/, 'ws')}/api/v1/live`);
    socket = ws;
    let renewing = false;
    let renewed = false;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: ctx.token, after: 0 }));
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!frame || typeof frame !== 'object' || stopped) return;
      if (frame.type === 'ready') {
        failures = 0;
        topUpFor(talk); // each (re)connection is a sync: the CLI tops up its one-time pre-keys at every one (§13.5)
        status(wasLost ? 'back' : 'live');
        wasLost = false;
      } else if (frame.type === 'item' && typeof frame.sealed === 'string') {
        try {
          talk.receive(base64(frame.sealed), viewing());
        } catch {
          // an item that is not base64 is dropped like one that does not open
        }
        // Handled (applied or dropped) and the state stored: only now may the node forget it.
        talk.persist().then(() => {
          if (!stopped && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'ack', ids: [frame.id] }));
        });
      } else if (frame.type === 'error' && frame.code === 'auth.moved') {
        stopped = true;
        ws.close();
        moved(frame.moved_at);
      } else if (frame.type === 'error' && frame.code === 'auth.required' && renew && !renewing) {
        // The session ran out: open a new one, then start over on a fresh socket.
        renewing = true;
        renew().then(
          () => {
            renewed = true;
            ws.close();
          },
          () => ws.close(),
        );
      }
    };
    ws.onclose = () => {
      if (stopped || socket !== ws) return;
      if (renewed) {
        connect();
        return;
      }
      failures += 1;
      wasLost = true;
      const wait = backoff(failures);
      status('lost', wait);
      timer = setTimeout(connect, wait);
    };
  };
  connect();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (socket) socket.close();
    },
  };
}
