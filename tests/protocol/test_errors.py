"""The error tree (spec §10): who is at fault, and codes read off the wire never crash a caller."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerfed.client.keyring import KeyringError
from peerfed.client.state import ClientError
from peerfed.client.transport import NodeUnreachable
from peerfed.node.config import ConfigError
from peerfed.node.federation import TransportError
from peerfed.node.keys import KeyFileError
from peerfed.node.store import StorageError
from peerfed.protocol import ERROR_CODES, ForeignError, LocalError, RemoteError, UnavailableError


@pytest.mark.parametrize("cls", [ConfigError, KeyFileError, ClientError, KeyringError])
def test_our_own_faults_are_local(cls: type[Exception]) -> None:
    assert issubclass(cls, LocalError) and not issubclass(cls, RemoteError | UnavailableError)


@pytest.mark.parametrize("cls", [StorageError, TransportError, NodeUnreachable])
def test_unavailability_is_neither_local_nor_remote(cls: type[UnavailableError]) -> None:
    error = cls("the disk is gone")
    assert isinstance(error, UnavailableError) and not isinstance(error, RemoteError | LocalError)
    assert (error.code, error.http_status) == ("node.unavailable", 503)


def test_a_registered_wire_code_keeps_its_meaning() -> None:
    error = RemoteError.from_wire("rate.limited", "slow down", 429)
    assert type(error) is RemoteError
    assert (error.code, error.http_status, str(error)) == ("rate.limited", 429, "slow down")


def test_an_unknown_wire_code_becomes_a_foreign_error() -> None:
    error = RemoteError.from_wire("quota.exceeded.v9", "too much", 429)
    assert isinstance(error, ForeignError) and isinstance(error, RemoteError)
    assert (error.code, error.http_status, str(error)) == ("quota.exceeded.v9", 429, "too much")


@given(code=st.one_of(st.none(), st.integers(), st.text(), st.binary()), message=st.one_of(st.none(), st.text()))
def test_anything_a_node_sends_as_a_code_gives_a_remote_error(code: object, message: object) -> None:
    error = RemoteError.from_wire(code, message, None)
    assert isinstance(error, RemoteError)
    assert error.code in ERROR_CODES or isinstance(error, ForeignError)
    assert 1 <= len(error.code) <= 64 and error.code.isprintable() and " " not in error.code
    assert 400 <= error.http_status <= 599
