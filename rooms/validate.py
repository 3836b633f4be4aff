"""Checks and normal forms for the values people type: emails, names, slugs, phones.

Every check either returns the value in its normal form or raises
:class:`rooms.errors.Invalid` with a message fit to show the person who typed
it. Messages name the field, never echo the value (it may be an email).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container
from datetime import datetime

from rooms.errors import Invalid

#: RFC 5321 §4.5.3.1: a forward path holds at most 254 characters of address
#: (256 minus the angle brackets); the local part at most 64.
EMAIL_MAX = 254
EMAIL_LOCAL_MAX = 64
#: Names of people, teams and rooms; generous for real names, small enough for a
#: dashboard line.
NAME_MAX = 100
#: A slug is a URL path segment typed or read aloud; 48 characters keeps links
#: short enough for an email signature.
SLUG_MAX = 48
#: ITU-T E.164: a phone number holds at most 15 digits. Seven is the shortest
#: subscriber number in use once an area code is counted.
PHONE_DIGITS_MIN = 7
PHONE_DIGITS_MAX = 15

#: Path segments the web shell serves itself; a room slug must never shadow them.
RESERVED_SLUGS = frozenset(
    {"api", "ws", "static", "admin", "login", "logout", "dashboard", "metrics", "healthz"}
    | {"readyz", "account", "accounts", "join", "docs", "settings"}
)

# Deliberately simple: one "@", no whitespace or control characters, a local part
# of printable ASCII without the characters that need quoting, and a domain of
# at least two dot-separated LDH labels (letters, digits, hyphens; not starting
# or ending with a hyphen). Quoted local parts, IP-literal domains and
# internationalised addresses are refused: the only real proof of an address is
# a message delivered to it, and this check exists to catch typing mistakes.
_LOCAL_RE = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_PHONE_RE = re.compile(r"\+?[0-9 ().-]+")


def email_key(raw: str) -> str:
    """The form an email is stored, compared and looked up in: stripped and
    lower-cased, local part included (mailbox providers treat it
    case-insensitively in practice). Valid addresses are ASCII (below), where
    lower-casing and Unicode case folding agree."""
    return raw.strip().lower()


def normalise_email(raw: str, *, field: str = "email") -> str:
    """Return ``raw`` in its :func:`email_key` form, or raise Invalid."""
    email = email_key(raw)
    if not email:
        raise Invalid(f"{field} is required")
    if len(email) > EMAIL_MAX:
        raise Invalid(f"{field} is longer than {EMAIL_MAX} characters")
    local, at, domain = email.rpartition("@")
    if not at or not local or "@" in local:
        raise Invalid(f"{field} must look like name@example.org")
    if len(local) > EMAIL_LOCAL_MAX or not _LOCAL_RE.fullmatch(local):
        raise Invalid(f"{field} has an invalid part before the @")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise Invalid(f"{field} has an invalid part before the @")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise Invalid(f"{field} has an invalid domain")
    return email


def check_text(
    value: str, *, field: str, max_length: int, min_length: int = 0, multiline: bool = False
) -> str:
    """Return ``value`` stripped if its length is within bounds, else raise Invalid.

    Control characters are refused (newlines and tabs too unless ``multiline``):
    they have no place in a name and only serve to forge log lines or layouts.
    """
    text = value.strip()
    if len(text) < min_length:
        raise Invalid(f"{field} is required" if min_length == 1 else f"{field} is too short")
    if len(text) > max_length:
        raise Invalid(f"{field} is longer than {max_length} characters")
    allowed = "\n\t" if multiline else ""
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text):
        raise Invalid(f"{field} contains control characters")
    return text


def check_name(value: str, *, field: str = "name", required: bool = True) -> str:
    """A person's, team's or room's name: 1..NAME_MAX characters (0 if not required)."""
    return check_text(value, field=field, max_length=NAME_MAX, min_length=1 if required else 0)


def slugify(name: str, *, fallback: str = "room") -> str:
    """A URL-safe slug for ``name``: lower-case ASCII letters and digits joined by
    single hyphens, at most SLUG_MAX characters ("Dr. Zoë O'Brien" -> "dr-zoe-o-brien").

    Accents are folded; what cannot be folded (other scripts) is dropped, and
    ``fallback`` is returned when nothing is left.
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    slug = slug[:SLUG_MAX].rstrip("-")
    return slug or fallback


def check_slug(slug: str, *, field: str = "slug") -> str:
    """Check a slug given by a person (lower-cased first), or raise Invalid."""
    value = slug.strip().lower()
    if not value or len(value) > SLUG_MAX or not _SLUG_RE.fullmatch(value):
        raise Invalid(f"{field} must be 1 to {SLUG_MAX} letters, digits and single hyphens")
    if value in RESERVED_SLUGS:
        raise Invalid(f"{field} is reserved")
    return value


def unique_slug(base: str, taken: Container[str]) -> str:
    """``base``, or ``base-2``, ``base-3``… : the first that is neither taken nor
    reserved. Slugs are unique across the whole server (they are URLs); the store
    still enforces it, so a caller that loses a race retries with a fuller ``taken``.
    """
    candidate = base
    suffix = 1
    while candidate in taken or candidate in RESERVED_SLUGS:
        suffix += 1
        tail = f"-{suffix}"
        candidate = base[: SLUG_MAX - len(tail)].rstrip("-") + tail
    return candidate


def check_phone(raw: str, *, field: str = "phone", required: bool = False) -> str:
    """Return the stripped phone number if it has a phone's shape, else raise Invalid.

    Shape only: an optional leading "+", digits, spaces, dots, dashes and
    parentheses, with PHONE_DIGITS_MIN..PHONE_DIGITS_MAX digits. An empty value
    is returned as "" unless ``required``.
    """
    phone = " ".join(raw.split())
    if not phone:
        if required:
            raise Invalid(f"{field} is required")
        return ""
    if not _PHONE_RE.fullmatch(phone):
        raise Invalid(f"{field} may hold only digits, spaces, + - . ( )")
    digits = sum(ch.isdigit() for ch in phone)
    if not PHONE_DIGITS_MIN <= digits <= PHONE_DIGITS_MAX:
        raise Invalid(f"{field} must have {PHONE_DIGITS_MIN} to {PHONE_DIGITS_MAX} digits")
    return phone


def check_aware(value: datetime, *, field: str) -> datetime:
    """Refuse naive datetimes: every instant in the domain carries its offset, so
    that comparisons across clients in different time zones are meaningful."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise Invalid(f"{field} must include a time zone")
    return value
