"""Guest credentials: issuing link tokens and guest keys, and the single-use rules.

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

import dataclasses
import enum
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from rooms.credentials import Credential
from rooms.errors import BadTransition, Conflict, Invalid, TokenInvalid
from rooms.meeting import Meeting
from rooms.validate import check_aware


class TokenState(enum.StrEnum):
    #: issued, neither used nor revoked (it may still be outside its window)
    ACTIVE = "active"
    #: consumed by one device, which may rejoin with its rejoin secret
    REDEEMED = "redeemed"
    #: the meeting was cancelled or rescheduled; final
    REVOKED = "revoked"


class TokenEvent(enum.StrEnum):
    REDEEM = "redeem"
    REVOKE = "revoke"


# The token lifecycle, all of it. Rules:
# - a credential is redeemed at most once (single use): only ACTIVE may REDEEM;
# - cancelling or rescheduling the meeting revokes its credential whether or not
#   the guest has used it (a redeemed device must not rejoin a moved meeting);
# - REVOKED is final. Expiry is not a state: it is a window checked against the
#   clock (see redeemable), so that no job has to flip rows when time passes.
# Any (state, event) pair missing here raises BadTransition naming the state.
TRANSITIONS: Mapping[tuple[TokenState, TokenEvent], TokenState] = MappingProxyType(
    {
        (TokenState.ACTIVE, TokenEvent.REDEEM): TokenState.REDEEMED,
        (TokenState.ACTIVE, TokenEvent.REVOKE): TokenState.REVOKED,
        (TokenState.REDEEMED, TokenEvent.REVOKE): TokenState.REVOKED,
    }
)

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


def token_state(cred: Credential) -> TokenState:
    """The lifecycle state recorded in ``cred`` (revocation wins over redemption)."""
    if cred.revoked_at is not None:
        return TokenState.REVOKED
    if cred.redeemed_at is not None:
        return TokenState.REDEEMED
    return TokenState.ACTIVE


def transition(state: TokenState, event: TokenEvent) -> TokenState:
    """The state after ``event``, or BadTransition naming ``state``."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise BadTransition("token", state.value, event.value) from None


def in_window(cred: Credential, now: datetime) -> bool:
    """Whether ``now`` lies in the credential's validity window [not_before, not_after)."""
    return cred.not_before <= now < cred.not_after


def redeemable(cred: Credential, now: datetime) -> bool:
    """The single rule every store applies atomically when redeeming: not
    revoked, not yet redeemed, and ``now`` inside [not_before, not_after)."""
    return token_state(cred) is TokenState.ACTIVE and in_window(cred, now)


def redeem(cred: Credential | None, device_digest: str, now: datetime) -> Credential:
    """The redeemed credential, bound to the device whose rejoin secret hashes
    to ``device_digest``; TokenInvalid if there is none or it is not redeemable.

    Pure: a store performs this same step atomically (check and write in one
    operation) so that exactly one of many concurrent redeemers wins.
    """
    if cred is None or not redeemable(cred, now):
        raise TokenInvalid()
    transition(token_state(cred), TokenEvent.REDEEM)
    return dataclasses.replace(cred, redeemed_at=now, device_digest=device_digest)


def revoke(cred: Credential, now: datetime) -> Credential:
    """The credential revoked at ``now`` (cancel or reschedule of its meeting).
    Revoking twice is a BadTransition: the caller revokes only current credentials."""
    transition(token_state(cred), TokenEvent.REVOKE)
    return dataclasses.replace(cred, revoked_at=now)


def check_rejoin(cred: Credential | None, device_digest: str, now: datetime) -> Credential:
    """Let the device that redeemed ``cred`` back in, until the credential's
    ``not_after`` (end of the meeting plus grace). Any other device, a revoked
    or unused credential, or a late return raises TokenInvalid."""
    if (
        cred is None
        or token_state(cred) is not TokenState.REDEEMED
        or cred.device_digest is None
        or not digests_equal(cred.device_digest, device_digest)
        or now >= cred.not_after
    ):
        raise TokenInvalid()
    return cred
