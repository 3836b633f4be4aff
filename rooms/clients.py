"""Editing a client account (a team) as its managing organisation does:
its details, and disabling it. A disabled account's members cannot log in and
their sessions end (the shell refuses every credential of a member of a
disabled team); nothing is deleted, and enabling it again restores access.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rooms.accounts import Team
from rooms.plans import REFERENCE_MAX
from rooms.validate import check_name, check_phone, check_text, normalise_email


@dataclass(frozen=True, slots=True)
class ClientChanges:
    """The fields a manager changes; None leaves one as it is."""

    name: str | None = None
    reference: str | None = None
    email: str | None = None
    phone: str | None = None
    disabled: bool | None = None


def edit_client(team: Team, changes: ClientChanges) -> Team:
    """``team`` with ``changes`` applied, each validated."""
    out = team
    if changes.name is not None:
        out = replace(out, name=check_name(changes.name, field="team name"))
    if changes.reference is not None:
        out = replace(
            out,
            reference=check_text(changes.reference, field="reference", max_length=REFERENCE_MAX),
        )
    if changes.email is not None:
        out = replace(out, email=normalise_email(changes.email))
    if changes.phone is not None:
        out = replace(out, phone=check_phone(changes.phone))
    if changes.disabled is not None:
        out = replace(out, disabled=changes.disabled)
    return out
