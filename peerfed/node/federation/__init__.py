"""Federation between nodes: signed requests, inbound work, discovery, catch-up and the sender (spec §13.7).

The package's modules, lowest first: ``transport`` (the signed request client) and ``verify`` (the
receiver's checks), ``addresses`` (where a node may connect), ``outbox`` (what is queued for other
nodes), ``discovery`` (node documents, and a request's key checked against its origin's),
``inbound`` (what other nodes ask of this one), ``catchup`` (pulling from them) and ``sender``
(the per-destination outbound queue). The names other code has always imported from
``peerfed.node.federation`` stay importable here; nothing that depends on the node's parts is.
"""

from .transport import AUTH_SCHEME, NodeClient, Remote, TransportError, parse_document, sign_request
from .verify import VerifiedRequest, verify_request

__all__ = [
    "AUTH_SCHEME",
    "NodeClient",
    "Remote",
    "TransportError",
    "VerifiedRequest",
    "parse_document",
    "sign_request",
    "verify_request",
]
