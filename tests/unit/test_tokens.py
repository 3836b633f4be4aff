"""Unit tests of rooms.tokens: issuing, digests, keys and the single-use rule."""

from __future__ import annotations

import dataclasses
import itertools
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rooms.credentials import Credential
from rooms.errors import Conflict, Invalid, TokenInvalid
from rooms.meeting import Guest, Meeting
from rooms.tokens import (
    KEY_ALPHABET,
    KEY_LENGTH,
    digest_key,
    digest_link,
    digest_secret,
    digests_equal,
    format_key,
    issue_credential,
    new_rejoin_secret,
    normalise_key,
    redeemable,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
START = NOW + timedelta(days=1)
DURATION = timedelta(minutes=30)


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"id{next(counter)}"


def meeting(**changes: object) -> Meeting:
    base = Meeting(
        id="m1",
        team_id="t1",
        host_id="s1",
        room_id="r1",
        type_id=None,
        guest=Guest(name="Pat Guest", email="pat@example.org"),
        duration=DURATION,
        created_at=NOW,
        start=START,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def issued_credential() -> Credential:
    return issue_credential(meeting(), NOW, new_id=ids()).credential


# -- issuing ------------------------------------------------------------------


def test_issue_stores_only_digests_and_the_default_window() -> None:
    issued = issue_credential(meeting(), NOW, new_id=ids())
    cred = issued.credential
    assert (cred.id, cred.meeting_id, cred.team_id, cred.room_id) == ("id1", "m1", "t1", "r1")
    assert cred.link_digest == digest_link(issued.link_token)
    assert cred.key_digest == digest_key("r1", issued.guest_key)
    stored = repr(cred)
    assert issued.link_token not in stored
    assert issued.guest_key not in stored
    assert cred.not_before == START - timedelta(minutes=15)
    assert cred.not_after == START + DURATION + timedelta(hours=2)
    assert (cred.revoked_at, cred.redeemed_at, cred.device_digest) == (None, None, None)


def test_issued_secrets_have_the_promised_shape() -> None:
    issued = issue_credential(meeting(), NOW, new_id=ids())
    # token_urlsafe(32): 32 bytes = 256 bits, 43 url-safe characters
    assert len(issued.link_token) == 43
    assert set(issued.link_token) <= set(string.ascii_letters + string.digits + "-_")
    assert len(issued.guest_key) == KEY_LENGTH
    assert set(issued.guest_key) <= set(KEY_ALPHABET)
    assert issued.display_key == f"{issued.guest_key[:4]}-{issued.guest_key[4:]}"
    other = issue_credential(meeting(), NOW, new_id=ids())
    assert other.link_token != issued.link_token


def test_issue_with_custom_margins() -> None:
    cred = issue_credential(
        meeting(), NOW, new_id=ids(), before=timedelta(0), grace=timedelta(minutes=5)
    ).credential
    assert (cred.not_before, cred.not_after) == (START, START + DURATION + timedelta(minutes=5))
    with pytest.raises(Invalid):
        issue_credential(meeting(), NOW, new_id=ids(), before=timedelta(seconds=-1))


def test_no_credential_for_planning_or_cancelled_meetings() -> None:
    planning = meeting(start=None, proposed_slots=(START, START + timedelta(hours=1)))
    with pytest.raises(Invalid):
        issue_credential(planning, NOW, new_id=ids())
    with pytest.raises(Conflict):
        issue_credential(meeting(cancelled_at=NOW, cancelled_by="s1"), NOW, new_id=ids())


def test_key_alphabet_has_no_ambiguous_characters() -> None:
    assert not set(KEY_ALPHABET) & set("0O1IL")
    assert len(set(KEY_ALPHABET)) == len(KEY_ALPHABET) == 31


# -- guest keys -------------------------------------------------------------


@pytest.mark.parametrize("typed", ["abcd efgh", "ABCD-EFGH", " ab-cd ef-gh ", "AbCdEfGh"])
def test_normalise_key_accepts_case_spaces_and_dashes(typed: str) -> None:
    assert normalise_key(typed) == "ABCDEFGH"


@pytest.mark.parametrize("typed", ["", "ABCDEFG", "ABCDEFGHJ", "ABCDEFG0", "ABCDEFGI", "ABC_EFGH"])
def test_normalise_key_refuses_with_the_uniform_error(typed: str) -> None:
    with pytest.raises(TokenInvalid) as info:
        normalise_key(typed)
    assert info.value.message == TokenInvalid.default_message


@st.composite
def typed_keys(draw: st.DrawFn) -> tuple[str, str]:
    key = draw(st.text(alphabet=KEY_ALPHABET, min_size=KEY_LENGTH, max_size=KEY_LENGTH))
    typed = ""
    for ch in key:
        typed += draw(st.sampled_from(["", " ", "-", "  ", " - "]))
        typed += draw(st.sampled_from([ch.lower(), ch.upper()]))
    typed += draw(st.sampled_from(["", " ", "-"]))
    return key, typed


@given(typed_keys())
def test_guest_keys_round_trip_through_normalise_key(pair: tuple[str, str]) -> None:
    key, typed = pair
    assert normalise_key(typed) == key
    assert normalise_key(format_key(key)) == key
    assert digest_key("r1", typed) == digest_key("r1", key)


def test_key_digest_is_bound_to_the_room() -> None:
    assert digest_key("r1", "ABCDEFGH") != digest_key("r2", "ABCDEFGH")


@given(st.text(min_size=1), st.text(min_size=1))
def test_digests_of_different_tokens_differ(a: str, b: str) -> None:
    assert (digest_link(a) == digest_link(b)) is (a == b)
    assert len(digest_link(a)) == 64
    assert digests_equal(digest_link(a), digest_link(b)) is (a == b)


# -- redeeming ------------------------------------------------------------------


def test_redeemable_window_is_half_open() -> None:
    cred = issued_credential()
    tick = timedelta(microseconds=1)
    assert not redeemable(cred, cred.not_before - tick)
    assert redeemable(cred, cred.not_before)
    assert redeemable(cred, cred.not_after - tick)
    assert not redeemable(cred, cred.not_after)


def test_redeemable_is_single_use_and_revocable() -> None:
    cred = issued_credential()
    assert redeemable(cred, START)
    used = dataclasses.replace(cred, redeemed_at=START, device_digest="d")
    assert not redeemable(used, START)
    assert not redeemable(dataclasses.replace(cred, revoked_at=NOW), START)
    assert not redeemable(dataclasses.replace(used, revoked_at=START), START)


def test_a_rejoin_secret_is_long_and_stored_as_its_digest() -> None:
    secret, device = new_rejoin_secret()
    assert device == digest_secret(secret)
    assert len(secret) >= 43
    assert new_rejoin_secret()[0] != secret
