"""Invitations of new team members: a one-time link to set a password.

An administrator invites a clinician by email; the clinician's account exists
from then on, without a password (nobody can log in to it), and the invitation
carries a link token. Opening the link and choosing a password activates the
account and logs the clinician in. The token is single use and expires after
:data:`INVITATION_TTL`; only its SHA-256 digest is looked up by, and the clear
token is kept sealed beside it (under the server's data key, like a guest's
link) only so that the outbox can render the invitation when it sends it.

Every way an invitation link can fail (unknown, used, expired, revoked) is the
same :class:`~rooms.errors.TokenInvalid`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rooms.errors import TokenInvalid
from rooms.tokens import SECRET_BYTES, digest_link
from rooms.validate import check_aware

#: An invitation is accepted within a week: long enough for a clinician who
#: reads mail twice a week, short enough that a forgotten mail goes stale.
INVITATION_TTL = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Invitation:
    """One invitation of ``staff_id`` (an account without a password yet)."""

    id: str
    team_id: str
    staff_id: str
    #: SHA-256 of the link token (rooms.tokens.digest_link)
    digest: str
    created_at: datetime
    expires_at: datetime
    #: the token sealed under the data key (signalling.sealing), for the outbox
    sealed: str | None = None
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IssuedInvitation:
    """A new invitation and its clear token, which is never stored."""

    invitation: Invitation
    token: str


def issue_invitation(
    team_id: str,
    staff_id: str,
    now: datetime,
    new_id: Callable[[], str],
    *,
    ttl: timedelta = INVITATION_TTL,
) -> IssuedInvitation:
    """A fresh invitation of ``staff_id``, valid from ``now`` for ``ttl``."""
    check_aware(now, field="now")
    token = secrets.token_urlsafe(SECRET_BYTES)
    invitation = Invitation(
        id=new_id(),
        team_id=team_id,
        staff_id=staff_id,
        digest=digest_link(token),
        created_at=now,
        expires_at=now + ttl,
    )
    return IssuedInvitation(invitation, token)


def usable(invitation: Invitation, now: datetime) -> bool:
    """Not used yet and not expired at ``now`` (the stores apply the same rule
    atomically when one is consumed)."""
    return invitation.used_at is None and invitation.created_at <= now < invitation.expires_at


def check_usable(invitation: Invitation | None, now: datetime) -> Invitation:
    """``invitation`` if usable at ``now``, else the uniform TokenInvalid."""
    if invitation is None or not usable(invitation, now):
        raise TokenInvalid("this invitation link is not valid; ask for a new one")
    return invitation
