"""A black-box conformance suite for a node (spec §13): it speaks only the client and federation APIs.

``peerfed conformance URL`` drives any node over the network, playing peers and a second node
itself, and reports one line per case with the spec rules the case checks. It builds and signs
objects with ``peerfed.protocol`` and never imports the reference node, so it judges another
implementation exactly as it judges ours.
"""

from .suite import Case, Failed, Level, Outcome, Result, load_cases, main, run_suite

__all__ = ["Case", "Failed", "Level", "Outcome", "Result", "load_cases", "main", "run_suite"]
