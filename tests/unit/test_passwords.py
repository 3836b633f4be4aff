"""Unit tests of rooms.passwords: scrypt hashing, verification, rehash decisions.

Most tests hash with a tiny cost (n=2**4) to stay fast; one checks the real
parameters end to end.
"""

from __future__ import annotations

import base64
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.errors import Invalid
from rooms.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    SALT_BYTES,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    check_password_rules,
    hash_password,
    needs_rehash,
    verify_password,
)

CHEAP = 2**4


def cheap_hash(password: str) -> str:
    return hash_password(password, n=CHEAP)


def test_default_parameters_are_owasp_minimum_and_round_trip() -> None:
    encoded = hash_password("correct horse battery")
    prefix, n, r, p, salt, key = encoded.split("$")
    assert (prefix, int(n), int(r), int(p)) == ("scrypt", SCRYPT_N, SCRYPT_R, SCRYPT_P)
    assert (SCRYPT_N, SCRYPT_R, SCRYPT_P) == (2**14, 8, 1)
    assert len(base64.b64decode(salt + "==")) == SALT_BYTES
    assert len(base64.b64decode(key + "=")) == 32
    assert verify_password("correct horse battery", encoded)
    assert not verify_password("correct horse batterY", encoded)
    assert not needs_rehash(encoded)


def test_password_length_boundary() -> None:
    check_password_rules("x" * MIN_PASSWORD_LENGTH)
    with pytest.raises(Invalid, match="at least 8 characters"):
        check_password_rules("x" * (MIN_PASSWORD_LENGTH - 1))
    with pytest.raises(Invalid, match="at least 8 characters"):
        cheap_hash("1234567")
    check_password_rules("x" * MAX_PASSWORD_LENGTH)
    with pytest.raises(Invalid, match="at most"):
        cheap_hash("x" * (MAX_PASSWORD_LENGTH + 1))


def test_same_password_hashes_differently_each_time() -> None:
    first, second = cheap_hash("password1"), cheap_hash("password1")
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert verify_password("password1", first)
    assert verify_password("password1", second)


def test_composed_and_decomposed_accents_verify_the_same() -> None:
    encoded = cheap_hash("caf\u00e9-au-lait")
    assert verify_password("cafe\u0301-au-lait", encoded)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plain-text-password",
        "bcrypt$16$8$1$AAAA$AAAA",
        "scrypt$16$8$1$AAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$4194304$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$16$0$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$16$8$1$not*base64$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$16$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAA",
        "scrypt$x$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_malformed_hash_verifies_nothing_and_needs_rehash(encoded: str) -> None:
    assert not verify_password("whatever-password", encoded)
    assert needs_rehash(encoded)


def test_unknown_account_spends_the_time_and_fails() -> None:
    assert verify_password("whatever-password", None) is False


def test_needs_rehash_when_parameters_change() -> None:
    weak = cheap_hash("password1")
    assert needs_rehash(weak)
    assert not needs_rehash(weak, n=CHEAP)
    assert needs_rehash(weak, n=CHEAP, r=16)


@settings(max_examples=25, deadline=None)
@given(
    password=st.text(min_size=MIN_PASSWORD_LENGTH, max_size=40),
    other=st.text(min_size=MIN_PASSWORD_LENGTH, max_size=40),
)
def test_verify_accepts_exactly_the_hashed_password(password: str, other: str) -> None:
    encoded = cheap_hash(password)
    assert verify_password(password, encoded)
    same = unicodedata.normalize("NFKC", other) == unicodedata.normalize("NFKC", password)
    assert verify_password(other, encoded) is same
