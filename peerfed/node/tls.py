"""Which certificate authorities outgoing https trusts (spec §13.7, Discovery; §13.1: production uses https).

A node reaching other nodes, and a peer's command line reaching its node, check every https
certificate and host name against the system's certificate authorities. An operator may add one
file of further authorities: a community that runs its own CA, or a test with one it made. The
file adds to the system's list and never replaces it, and nothing here turns checking off: there
is no setting that accepts any certificate.

The node's setting is ``ca_file`` (PEERFED_CA_FILE, --ca-file); the peer's command line reads the
same PEERFED_CA_FILE variable (``peerfed.client.transport.http_session``).
"""

from __future__ import annotations

import os
import ssl

__all__ = ["trusting"]


def trusting(ca_file: str | os.PathLike[str]) -> ssl.SSLContext:
    """A client TLS context trusting the system's authorities and, if ``ca_file`` is not empty,
    the PEM certificates in it too.

    Raises ValueError, saying why, if ``ca_file`` cannot be read or holds no usable certificate.
    """
    context = ssl.create_default_context()
    if not os.fspath(ca_file):
        return context
    try:
        context.load_verify_locations(cafile=os.fspath(ca_file))
    except ssl.SSLError as exc:  # read, but not PEM, or no certificate in it
        raise ValueError(f"{os.fspath(ca_file)!r} is not a file of PEM certificates ({exc.reason})") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ValueError(f"cannot use {os.fspath(ca_file)!r} as certificate authorities: {reason}") from exc
    return context
