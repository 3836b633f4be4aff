"""Unit tests of rooms.validate: emails, names, slugs, phones, aware datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rooms.errors import Invalid
from rooms.validate import (
    EMAIL_MAX,
    NAME_MAX,
    SLUG_MAX,
    check_aware,
    check_name,
    check_phone,
    check_slug,
    check_text,
    normalise_email,
    slugify,
    unique_slug,
)

# -- email ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jane.Doe@Example.ORG ", "jane.doe@example.org"),
        ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("x@a-b.io", "x@a-b.io"),
    ],
)
def test_normalise_email_accepts_and_lower_cases(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "plainaddress",
        "@example.org",
        "jane@",
        "jane@localhost",
        "jane@@example.org",
        "ja ne@example.org",
        "jane@exa mple.org",
        ".jane@example.org",
        "jane.@example.org",
        "ja..ne@example.org",
        "jane@-example.org",
        "jane@example-.org",
        "jane@example..org",
        "jané@example.org",
        '"jane"@example.org',
        "jane@[127.0.0.1]",
    ],
)
def test_normalise_email_refuses(raw: str) -> None:
    with pytest.raises(Invalid):
        normalise_email(raw)


def test_email_length_boundaries() -> None:
    local64 = "a" * 64
    assert normalise_email(f"{local64}@example.org")
    with pytest.raises(Invalid):
        normalise_email(f"{local64}a@example.org")
    domain = ".".join(["b" * 63] * 3 + ["c" * 60])
    at_max = f"a@{domain}"
    assert len(at_max) == EMAIL_MAX
    assert normalise_email(at_max) == at_max
    with pytest.raises(Invalid, match="longer than 254"):
        normalise_email(f"aa@{domain}")
    with pytest.raises(Invalid, match="domain"):
        normalise_email("a@" + "b" * 64 + ".org")


def test_email_error_never_echoes_the_value() -> None:
    with pytest.raises(Invalid) as info:
        normalise_email("secret.person@@example.org")
    assert "secret.person" not in info.value.message


@given(st.emails())
def test_normalise_email_is_idempotent_on_what_it_accepts(email: str) -> None:
    try:
        once = normalise_email(email)
    except Invalid:
        return
    assert normalise_email(once) == once
    assert once == once.lower().strip()


# -- names and text -----------------------------------------------------------


def test_check_name_boundaries() -> None:
    assert check_name("  Jane Doe ") == "Jane Doe"
    assert check_name("x" * NAME_MAX) == "x" * NAME_MAX
    with pytest.raises(Invalid, match="longer than 100"):
        check_name("x" * (NAME_MAX + 1))
    with pytest.raises(Invalid, match="name is required"):
        check_name("   ")
    assert check_name("", required=False) == ""


def test_check_text_refuses_control_characters_unless_multiline() -> None:
    with pytest.raises(Invalid, match="control"):
        check_name("Jane\nDoe")
    with pytest.raises(Invalid, match="control"):
        check_text("a\x00b", field="notes", max_length=10, multiline=True)
    assert check_text("line 1\nline 2", field="notes", max_length=20, multiline=True)


# -- slugs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Dr. Zoë O'Brien", "dr-zoe-o-brien"),
        ("  Reception  ", "reception"),
        ("Room #3 — Physio", "room-3-physio"),
        ("李医生", "room"),
        ("---", "room"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


@given(st.text(max_size=200))
def test_slugify_always_yields_a_valid_slug(name: str) -> None:
    slug = slugify(name)
    assert 1 <= len(slug) <= SLUG_MAX
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug)


def test_check_slug() -> None:
    assert check_slug(" Dr-Jane ") == "dr-jane"
    assert check_slug("a" * SLUG_MAX) == "a" * SLUG_MAX
    for bad in ("", "a" * (SLUG_MAX + 1), "dr--jane", "-jane", "jane-", "dr jane", "dr_jane"):
        with pytest.raises(Invalid):
            check_slug(bad)
    with pytest.raises(Invalid, match="reserved"):
        check_slug("api")


def test_unique_slug_appends_the_first_free_number() -> None:
    assert unique_slug("dr-jane", set()) == "dr-jane"
    assert unique_slug("dr-jane", {"dr-jane"}) == "dr-jane-2"
    assert unique_slug("dr-jane", {"dr-jane", "dr-jane-2"}) == "dr-jane-3"
    assert unique_slug("admin", set()) == "admin-2"
    long = "a" * SLUG_MAX
    assert unique_slug(long, {long}) == "a" * (SLUG_MAX - 2) + "-2"


# -- phones -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["+44 20 7946 0958", "(020) 7946-0958", "1234567", "+123456789012345", "02.79.46.00"]
)
def test_check_phone_accepts(raw: str) -> None:
    assert check_phone(f"  {raw} ") == raw


@pytest.mark.parametrize(
    "raw", ["123456", "+1234567890123456", "call me", "++44 20 7946 0958", "020 7946 0958 ext 2"]
)
def test_check_phone_refuses(raw: str) -> None:
    with pytest.raises(Invalid):
        check_phone(raw)


def test_check_phone_empty_only_when_optional() -> None:
    assert check_phone("  ") == ""
    with pytest.raises(Invalid, match="required"):
        check_phone("", required=True)


# -- datetimes ----------------------------------------------------------------


def test_check_aware() -> None:
    aware = datetime(2025, 1, 1, tzinfo=UTC)
    assert check_aware(aware, field="start") is aware
    assert check_aware(aware.astimezone(timezone(timedelta(hours=2))), field="start")
    with pytest.raises(Invalid, match="start must include a time zone"):
        check_aware(datetime(2025, 1, 1), field="start")
