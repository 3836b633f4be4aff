"""The storage interface every store implements and the contract suite tests.

All methods are coroutines; none blocks the event loop. Lookups by id raise
:class:`rooms.errors.NotFound`; ``find_*`` return None instead. Uniqueness
violations (room slug, staff email compared case-insensitively) raise
:class:`rooms.errors.Conflict`.

Credential redemption is the one place where atomicity is the whole point:
``redeem_link`` / ``redeem_key`` consume a credential only if it is, at
``now``, not revoked, not yet redeemed and inside [not_before, not_after)
(the rule of rooms.tokens.redeemable), in one atomic step, even with many
concurrent callers and (for Redis) many nodes: exactly one caller gets the
credential back, all others get None.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from rooms.accounts import ApiKey, AuditEntry, Group, Organisation, StaffAccount, Team
from rooms.credentials import Credential
from rooms.hours import WorkingHours
from rooms.invitations import Invitation
from rooms.meeting import Meeting, MeetingType
from rooms.outbox import OutboxMessage, TeamMessaging, Trigger
from rooms.presence import LogEntry
from rooms.room import Room

#: one entry to append: (team id, at, topic, kind, meeting id, data)
LogAppend = tuple[str, datetime, str, str, "str | None", Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Entry:
    """A redeemed link's credential with the meeting and room it opens (one read)."""

    credential: Credential
    meeting: Meeting
    room: Room


class Store(Protocol):
    async def open(self) -> None:
        """Connect and migrate the schema to the latest version."""

    async def close(self) -> None: ...

    # -- organisations, teams, staff, groups ---------------------------------
    async def add_organisation(self, org: Organisation) -> None: ...
    async def get_organisation(self, org_id: str) -> Organisation: ...
    async def add_team(self, team: Team) -> None: ...
    async def get_team(self, team_id: str) -> Team: ...
    async def update_team(self, team: Team) -> None: ...
    async def list_teams(self, org_id: str) -> list[Team]: ...
    async def list_team_ids(self) -> list[str]:
        """The id of every team in the store, sorted (the status scheduler walks
        them at start-up to find meetings whose status is still due to change)."""

    async def add_staff(self, account: StaffAccount) -> None: ...
    async def get_staff(self, staff_id: str) -> StaffAccount: ...
    async def update_staff(self, account: StaffAccount) -> None: ...
    async def find_staff_by_email(self, email: str) -> StaffAccount | None: ...
    async def list_staff(self, team_id: str) -> list[StaffAccount]: ...
    async def add_group(self, group: Group) -> None: ...
    async def update_group(self, group: Group) -> None: ...
    async def list_groups(self, team_id: str) -> list[Group]: ...

    # -- rooms and meeting types ---------------------------------------------
    async def add_room(self, room: Room) -> None: ...
    async def get_room(self, room_id: str) -> Room: ...
    async def find_room_by_slug(self, slug: str) -> Room | None: ...
    async def update_room(self, room: Room) -> None: ...
    async def list_rooms(self, team_id: str) -> list[Room]: ...
    async def add_meeting_type(self, meeting_type: MeetingType) -> None: ...
    async def get_meeting_type(self, type_id: str) -> MeetingType: ...
    async def update_meeting_type(self, meeting_type: MeetingType) -> None: ...
    async def list_meeting_types(self, team_id: str) -> list[MeetingType]: ...
    async def delete_meeting_type(self, type_id: str) -> bool:
        """Delete the type if no meeting refers to it and return True; if one
        does, leave it and return False (the caller retires it instead). The
        check and the delete are one atomic step: a meeting booked with the
        type at the same moment either blocks the delete or is refused
        (NotFound). NotFound if there is no such type."""

    # -- online booking ----------------------------------------------------------
    async def get_working_hours(self, staff_id: str) -> WorkingHours | None:
        """The member's working hours, if they set any."""

    async def put_working_hours(self, hours: WorkingHours) -> None:
        """Replace the member's working hours (NotFound if no such member)."""

    async def book_if_free(self, meeting: Meeting, credential: Credential) -> bool:
        """Add a dated meeting and its credential (as add_meetings) only if no
        meeting of the same host that is not cancelled overlaps
        [start, start + duration); False (nothing written) otherwise. The check
        and the write are one atomic step, so of any number of concurrent
        callers on any number of nodes booking overlapping times for one host,
        exactly one gets True."""

    async def knows_guest(self, team_id: str, email: str) -> bool:
        """Whether a meeting of the team that the practice booked (any state;
        not one ``booked_online``) has a guest with this email, compared as
        rooms.validate.email_key does."""

    # -- meetings and credentials ----------------------------------------------
    async def add_meetings(
        self, meetings: Sequence[Meeting], credentials: Sequence[Credential]
    ) -> None:
        """Add meetings (one, or every occurrence of a series) and their
        credentials in one transaction: all or nothing."""

    async def get_meeting(self, meeting_id: str) -> Meeting: ...
    async def update_meeting(self, meeting: Meeting) -> None: ...
    async def list_meetings(
        self,
        team_id: str,
        *,
        host_ids: Collection[str] | None = None,
        start_from: datetime | None = None,
        start_to: datetime | None = None,
    ) -> list[Meeting]:
        """Meetings of a team, optionally only those hosted by ``host_ids`` and
        starting in [start_from, start_to); meetings still in planning (no start)
        are included unless a start bound is given. Sorted by start, then id."""

    async def replace_credential(
        self, meeting_id: str, new: Credential | None, now: datetime
    ) -> None:
        """Revoke every unrevoked credential of the meeting (``revoked_at=now``)
        and, if given, add ``new``, atomically (cancel: new=None; reschedule: new)."""

    async def store_chosen_slot(
        self, meeting: Meeting, credential: Credential, now: datetime
    ) -> bool:
        """Store ``meeting`` (its slot just chosen) and its new credential
        (revoking any other at ``now``) only if the stored meeting is still in planning:
        no start and not cancelled. Atomic: of concurrent callers, on any number
        of nodes, at most one gets True; the others write nothing and get False.
        NotFound if there is no such meeting."""

    async def store_review(self, meeting: Meeting) -> Meeting | None:
        """Write ``meeting``'s review (``review`` and ``review_rating``, and no
        other field) only if the stored meeting has none yet, and return the
        stored meeting with it. Atomic: of concurrent callers on any number of
        nodes, exactly one gets the meeting back; the others write nothing and
        get None. NotFound if there is no such meeting."""

    async def find_link(self, link_digest: str) -> Credential | None:
        """The credential with this link digest as it stands, without redeeming
        it (whether it is revoked, used or in its window is the caller's to read)."""

    async def get_credential_for_meeting(self, meeting_id: str) -> Credential | None:
        """The meeting's current (unrevoked) credential, if any."""

    async def live_credentials(self, meeting_ids: Collection[str]) -> dict[str, Credential]:
        """Meeting id -> its current (unrevoked) credential, for those of
        ``meeting_ids`` that have one (a page of meetings in one call)."""

    async def redeem_link(
        self, link_digest: str, device_digest: str, now: datetime
    ) -> Credential | None:
        """Consume the credential with this link digest if redeemable at ``now``;
        record ``redeemed_at=now`` and ``device_digest``. Atomic (see module doc)."""

    async def redeem_link_entry(
        self, link_digest: str, device_digest: str, now: datetime
    ) -> Entry | None:
        """As redeem_link, and the credential's meeting and room read in the same
        step (one statement on SQLite, one script on Redis): a guest's join costs one
        store round trip instead of three. None exactly when redeem_link would be."""

    async def redeem_key(
        self, key_digest: str, device_digest: str, now: datetime
    ) -> Credential | None:
        """As redeem_link, by guest-key digest."""

    async def find_by_device(self, device_digest: str, now: datetime) -> Credential | None:
        """The redeemed, unrevoked credential this device's rejoin secret belongs
        to, if ``now`` is before its ``not_after``."""

    async def get_meeting_facts(self, meeting_id: str) -> Mapping[str, Any] | None:
        """The meeting's presence facts (rooms.status.MeetingFacts as a JSON-able
        mapping), kept beside the meeting so status survives log trimming."""

    async def put_meeting_facts(self, meeting_id: str, facts: Mapping[str, Any]) -> None: ...

    # -- the outbox of messages to guests ------------------------------------------
    async def add_messages(self, messages: Sequence[OutboxMessage]) -> None:
        """Add messages, all or none (NotFound if a meeting does not exist,
        Conflict for a reused id)."""

    async def list_messages(self, meeting_id: str) -> list[OutboxMessage]:
        """Every message of a meeting, whatever its state, by due time then id."""

    async def claim_messages(
        self, now: datetime, claimer: str, until: datetime, limit: int
    ) -> list[OutboxMessage]:
        """Claim up to ``limit`` messages that are ``scheduled``, due at or before
        ``now`` and not held by a live claim (none, or one whose ``claimed_until``
        is at or before ``now``): set ``claimed_by=claimer``,
        ``claimed_until=until`` and count one more attempt, in one atomic step,
        so that of any number of concurrent claimers on any number of nodes
        exactly one gets each message. Returns them as claimed, by due time."""

    async def settle_message(self, message: OutboxMessage, claimer: str) -> bool:
        """Record how a claimed attempt ended (``message``'s state, due_at,
        last_error and sent_at; the claim is released) if ``claimer`` still
        holds it; False (nothing written) if it does not."""

    async def cancel_messages(
        self, meeting_id: str, now: datetime, triggers: Collection[Trigger] | None = None
    ) -> int:
        """Cancel the meeting's ``scheduled`` messages (of ``triggers`` only,
        if given) that no live claim holds; returns how many. A message being
        sent right now is left to its sender."""

    async def next_message_due(self) -> datetime | None:
        """When the earliest ``scheduled`` message becomes claimable (its due
        time, or the end of the claim holding it), if there is one."""

    async def get_messaging(self, team_id: str) -> TeamMessaging | None:
        """The team's reminder offsets and template overrides, if it set any."""

    async def put_messaging(self, messaging: TeamMessaging) -> None:
        """Replace the team's messaging choices (NotFound if there is no such team)."""

    # -- invitations of new members ----------------------------------------------
    async def add_invitation(self, invitation: Invitation) -> None:
        """Add an invitation (NotFound without its team or staff account;
        Conflict for a reused id or digest)."""

    async def get_invitation(self, invitation_id: str) -> Invitation: ...
    async def find_invitation(self, digest: str) -> Invitation | None:
        """The invitation with this link digest, used or not."""

    async def consume_invitation(self, digest: str, now: datetime) -> Invitation | None:
        """Mark the invitation with this digest used at ``now`` if it is usable
        then (rooms.invitations.usable: unused, ``created_at <= now <
        expires_at``), in one atomic step: of any number of concurrent callers
        on any node exactly one gets it back, all others None."""

    # -- API keys and audit --------------------------------------------------
    async def add_api_key(self, key: ApiKey) -> None: ...
    async def find_api_key(self, digest: str) -> ApiKey | None: ...
    async def append_audit(self, entry: AuditEntry) -> None: ...

    # -- ended staff sessions (logout holds on every node) ---------------------
    async def revoke_session(self, session_id: str, until: datetime, now: datetime) -> None:
        """Remember that the staff session ``session_id`` was ended; the record may
        be forgotten after ``until`` (when the session's cookie expires anyway), and
        records whose ``until`` is before ``now`` may be pruned."""
        ...

    async def session_revoked(self, session_id: str) -> bool: ...
    async def list_audit(self, org_id: str, *, team_id: str | None = None) -> list[AuditEntry]: ...

    # -- the per-team ordered log ----------------------------------------------
    async def append_log(
        self,
        team_id: str,
        at: datetime,
        topic: str,
        kind: str,
        meeting_id: str | None,
        data: Mapping[str, Any],
    ) -> LogEntry:
        """Append one entry with the team's next sequence number (strictly
        increasing from 1, never reused, even after trimming or a restart)."""

    async def write_presence(
        self, appends: Sequence[LogAppend], facts: Mapping[str, Mapping[str, Any]]
    ) -> list[LogEntry]:
        """Append every entry (each team's in the order given, numbered as
        append_log does) and replace every meeting's facts, all or nothing, in
        one round trip: the presence writer's group commit. ``facts`` names
        meetings that exist (the writer read them). Returns the entries, in
        order."""

    async def get_meeting_facts_many(
        self, meeting_ids: Collection[str]
    ) -> dict[str, Mapping[str, Any]]:
        """The stored facts of each meeting that has some, in one round trip."""

    async def log_since(self, team_id: str, after_seq: int, limit: int = 1000) -> list[LogEntry]:
        """Entries with seq > after_seq, ascending, at most ``limit``."""

    async def log_bounds(self, team_id: str) -> tuple[int, int]:
        """(lowest retained seq, highest seq); (0, 0) for an empty log. After a
        trim the lowest retained may be > 1: a subscriber asking for an older
        seq needs a fresh snapshot."""

    async def log_for_meeting(self, team_id: str, meeting_id: str) -> list[LogEntry]:
        """Every retained entry about one meeting, ascending."""

    async def trim_log(self, team_id: str, keep_last: int) -> int:
        """Drop all but the newest ``keep_last`` entries; returns how many were dropped."""
