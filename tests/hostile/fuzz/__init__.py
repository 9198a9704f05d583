"""Hostile input at every endpoint of a node: random and mutated bytes, JSON, headers and frames.

One generator per endpoint (``generators.GENERATORS``; ``client_api``, ``federation_api``, and
``prekeys_api`` for the one-time pre-key routes of spec §13.5) builds a
request from a ``Source`` of choices (``sources``): random bytes, valid signed objects and sealed
messages garbled at the byte level or the msgpack level (``mutators``; re-signed with ``_frame`` so
they pass the signature and reach the decoding, schema and node layers), wrong JSON types, truncated
and oversize bodies, replays, expired and future-dated objects, forged, stale, replayed and
misaddressed ``Peerfed-Node`` signatures, and junk WebSocket frames. The same generators run under
Hypothesis (``test_hostile_input``, ``HypothesisSource``) and from a seeded ``random.Random`` in
``tests/hostile/fuzz_long.py`` (``RandomSource``) for long runs outside CI.

For every input (``oracle.judge``):

- the answer is JSON: ``{"error": {"code": C, "message": M}}`` with C in ERROR_CODES and the HTTP
  status ERROR_CODES[C], never ``node.internal`` -- or a success of the documented shape;
- an input that must be refused (no session, a forged node signature, bytes garbled after signing)
  is refused, and with the code the spec fixes where it fixes one;
- a refused input stores nothing: the tables of ``Store.counts()`` and the rest (sessions,
  tombstones, seen ids, facets, nonces) keep their row counts; reads store nothing either;
- a pre-key claim hands out a key given for that peer, never one handed out before, and takes
  exactly that key from the stock (``judge_prekeys``); a refused upload leaves the stock as it was;
- the node logs no unexpected exception;
- and the node keeps serving: an honest peer's and an honest node's requests still succeed (``honest``).

The nodes run in a background event loop (``world.World``), started once per test function; each
example is one request (or one WebSocket conversation) sent over a raw socket (``wire``), so header
bytes that an HTTP client library would refuse to send still reach the node. Rate limits and the
mailbox cap are off on the target node so that inputs reach past them (``LIMITS``), and it asks
new peers for a little proof of work so that X-Peerfed-Work is exercised too.

500 examples per group by default (300 for the slower live group); more with
``PEERFED_FUZZ_EXAMPLES=5000 python -m pytest tests/hostile/fuzz``. Inputs the fuzzers found the node
mishandling are pinned in ``test_known_inputs``.
"""
