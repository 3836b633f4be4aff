"""Guest credentials: issuing link tokens and guest keys, and the single-use rule.

A meeting's credential has two spellings: a *link token* (in the URL the guest
is sent) and a *guest key* (eight characters typed on the room's page). Only
SHA-256 digests of either are stored (rooms.credentials.Credential); the clear
values exist once, in the :class:`IssuedCredential` handed to whoever sends
them to the guest.

Every way a guest's credential can fail (unknown, mistyped, expired, revoked,
already used, used from another device) raises the same
:class:`~rooms.errors.TokenInvalid` with the same message: a wrong guess must
learn nothing about the meeting, not even that it exists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rooms.credentials import Credential
from rooms.errors import Conflict, Invalid, TokenInvalid
from rooms.meeting import Meeting
from rooms.validate import check_aware

#: Links open this long before the start: guests arrive early to run the media check.
DEFAULT_BEFORE = timedelta(minutes=15)
#: ... and stay valid this long after the planned end: meetings overrun, and a
#: late guest should still get in while the clinician is there.
DEFAULT_GRACE = timedelta(hours=2)

#: The guest key's alphabet: digits and capitals without 0/O, 1/I/L, which are
#: misread when a key is read out on the phone or copied from paper.
KEY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
#: 8 characters of 31 symbols: about 39.6 bits. A key is typed by hand, so its
#: strength against guessing comes from the throttle on attempts (per client
#: address and per room) and from its short life, not from its length; it is
#: also bound to one room (the digest includes the room id).
KEY_LENGTH = 8
#: Link tokens and rejoin secrets: 32 bytes from `secrets`, 256 bits, well over
#: the 128 bits that make guessing hopeless without any throttle at all.
SECRET_BYTES = 32

_KEY_CHARS = frozenset(KEY_ALPHABET)
# Spacing a guest may type between characters; removed before checking.
_KEY_SEPARATORS = str.maketrans("", "", " -\t\u00a0\u2010\u2011\u2012\u2013")


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """A new credential: ``credential`` is what the store keeps; ``link_token``
    and ``guest_key`` are the clear values, given out once and never stored."""

    credential: Credential
    link_token: str
    guest_key: str

    @property
    def display_key(self) -> str:
        """The guest key as shown to people: ``XXXX-XXXX``."""
        return format_key(self.guest_key)


def issue_credential(
    meeting: Meeting,
    now: datetime,
    *,
    new_id: Callable[[], str],
    before: timedelta = DEFAULT_BEFORE,
    grace: timedelta = DEFAULT_GRACE,
) -> IssuedCredential:
    """Issue the credential of ``meeting``, valid in [start - before, end + grace).

    Raises Invalid for a meeting still in planning (no start yet: issue one
    when the slot is chosen) or a negative window, Conflict for a cancelled one.
    """
    check_aware(now, field="now")
    if meeting.cancelled:
        raise Conflict("the meeting is cancelled")
    if meeting.start is None or meeting.end is None:
        raise Invalid("the meeting has no time yet")
    if before < timedelta(0) or grace < timedelta(0):
        raise Invalid("the validity margins must not be negative")
    link_token = secrets.token_urlsafe(SECRET_BYTES)
    guest_key = "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))
    credential = Credential(
        id=new_id(),
        meeting_id=meeting.id,
        team_id=meeting.team_id,
        room_id=meeting.room_id,
        link_digest=digest_link(link_token),
        key_digest=digest_key(meeting.room_id, guest_key),
        not_before=meeting.start - before,
        not_after=meeting.end + grace,
    )
    return IssuedCredential(credential=credential, link_token=link_token, guest_key=guest_key)


def normalise_key(typed: str) -> str:
    """The canonical form of a typed guest key: upper case, without spaces or
    dashes. Raises TokenInvalid (the uniform error) if it cannot be a key."""
    key = typed.translate(_KEY_SEPARATORS).upper()
    if len(key) != KEY_LENGTH or not _KEY_CHARS.issuperset(key):
        raise TokenInvalid()
    return key


def format_key(key: str) -> str:
    """A guest key grouped for reading: ``ABCD-EFGH``."""
    canonical = normalise_key(key)
    half = KEY_LENGTH // 2
    return f"{canonical[:half]}-{canonical[half:]}"


def digest_link(token: str) -> str:
    """Hex SHA-256 of a link token: what the store keeps and looks up by.

    A plain hash (no salt, no stretching) is right here: the token carries 256
    random bits, so there is nothing for a dictionary to find, and lookup by
    digest must be a single indexed read."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def digest_key(room_id: str, key: str) -> str:
    """Hex SHA-256 of ``"{room_id}:{normalised key}"``: the key is bound to its
    room, so the same eight characters typed on another room's page match nothing.
    Raises TokenInvalid if ``key`` cannot be a key."""
    return hashlib.sha256(f"{room_id}:{normalise_key(key)}".encode()).hexdigest()


def digest_secret(secret: str) -> str:
    """Hex SHA-256 of a rejoin secret (stored as ``Credential.device_digest``)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def digests_equal(a: str, b: str) -> bool:
    """Compare two digests in constant time (hmac.compare_digest)."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def new_rejoin_secret() -> tuple[str, str]:
    """A fresh rejoin secret for the device that redeems a credential, and its
    digest: ``(secret, digest)``. The secret goes to the device only."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return secret, digest_secret(secret)


def in_window(cred: Credential, now: datetime) -> bool:
    """Whether ``now`` lies in the credential's validity window [not_before, not_after)."""
    return cred.not_before <= now < cred.not_after


def redeemable(cred: Credential, now: datetime) -> bool:
    """The single-use rule: not revoked, not yet redeemed, and ``now`` inside
    [not_before, not_after).

    Redemption must decide and record in one atomic step, or two devices could
    both win: each store applies exactly this rule in its own atomic statement
    (``UPDATE … WHERE … RETURNING`` in SQLite, a Lua script in Redis), and the
    contract suite (tests/contract) holds both to it. Here it is the rule as
    the domain states it, for reads that spend nothing (placing a guest on
    the node that owns their room before their link is redeemed there)."""
    return cred.revoked_at is None and cred.redeemed_at is None and in_window(cred, now)
