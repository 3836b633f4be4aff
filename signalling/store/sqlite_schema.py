"""The SQLite schema as an ordered list of migrations.

``MIGRATIONS[i]`` moves a database from version ``i`` to ``i + 1``; the
current version is the single row of ``schema_version``. SQLiteStore.open()
applies the missing ones in one transaction, so a crash mid-migration leaves
the previous version intact. Never edit a published migration: append one.

Conventions (they are what signalling.store.codec produces):

- columns are named after the dataclass fields they hold, so the codec maps
  rows generically; a field added to a rooms/ model needs a migration adding
  its column (tests/contract/test_schema.py fails until it exists);
- timestamps and durations are INTEGER microseconds since the epoch (UTC);
  exact, sortable and comparable in SQL (the redemption window check);
- sets, tuples, a meeting's guest and free-form facts are JSON text;
- staff emails are unique case-insensitively through ``email_norm``
  (rooms.validate.email_key);
- references are foreign keys (a missing parent is NotFound); the log and the
  audit trail have none, so recording them never fails on a reference.
"""

from __future__ import annotations

from collections.abc import Sequence

Migration = Sequence[str]

_V1: Migration = (
    """
    CREATE TABLE organisations (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE teams (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES organisations(id),
        name TEXT NOT NULL,
        reference TEXT NOT NULL,
        plan TEXT NOT NULL,
        email TEXT NOT NULL,
        phone TEXT NOT NULL,
        created_at INTEGER NOT NULL
    )
    """,
    "CREATE INDEX teams_by_org ON teams(org_id)",
    """
    CREATE TABLE staff (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES organisations(id),
        team_id TEXT REFERENCES teams(id),
        role TEXT NOT NULL,
        email TEXT NOT NULL,
        email_norm TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        title TEXT NOT NULL,
        speciality TEXT NOT NULL,
        contact TEXT NOT NULL,
        phone TEXT NOT NULL,
        created_at INTEGER,
        groups TEXT NOT NULL
    )
    """,
    "CREATE INDEX staff_by_team ON staff(team_id)",
    """
    CREATE TABLE groups (
        id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL REFERENCES teams(id),
        name TEXT NOT NULL,
        member_ids TEXT NOT NULL
    )
    """,
    "CREATE INDEX groups_by_team ON groups(team_id)",
    """
    CREATE TABLE rooms (
        id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL REFERENCES teams(id),
        slug TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        owner_id TEXT REFERENCES staff(id),
        show_position INTEGER NOT NULL,
        capacity INTEGER NOT NULL
    )
    """,
    "CREATE INDEX rooms_by_team ON rooms(team_id)",
    """
    CREATE TABLE meeting_types (
        id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL REFERENCES teams(id),
        label TEXT NOT NULL,
        duration INTEGER NOT NULL,
        colour TEXT NOT NULL,
        online_bookable INTEGER NOT NULL,
        known_patients_only INTEGER NOT NULL,
        kinds TEXT NOT NULL,
        address TEXT NOT NULL,
        instructions TEXT NOT NULL,
        description TEXT NOT NULL
    )
    """,
    "CREATE INDEX meeting_types_by_team ON meeting_types(team_id)",
    """
    CREATE TABLE meetings (
        id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL REFERENCES teams(id),
        host_id TEXT NOT NULL REFERENCES staff(id),
        room_id TEXT NOT NULL REFERENCES rooms(id),
        type_id TEXT REFERENCES meeting_types(id),
        guest TEXT NOT NULL,
        duration INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        start INTEGER,
        proposed_slots TEXT NOT NULL,
        description TEXT NOT NULL,
        series_id TEXT,
        cancelled_at INTEGER,
        cancelled_by TEXT,
        review TEXT,
        review_rating INTEGER,
        summary TEXT
    )
    """,
    "CREATE INDEX meetings_by_team_start ON meetings(team_id, start, id)",
    """
    CREATE TABLE credentials (
        id TEXT PRIMARY KEY,
        meeting_id TEXT NOT NULL REFERENCES meetings(id),
        team_id TEXT NOT NULL,
        room_id TEXT NOT NULL,
        link_digest TEXT NOT NULL UNIQUE,
        key_digest TEXT NOT NULL UNIQUE,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        revoked_at INTEGER,
        redeemed_at INTEGER,
        device_digest TEXT
    )
    """,
    # A meeting has at most one live credential: replace_credential revokes
    # the old one before adding the new, in one transaction.
    """
    CREATE UNIQUE INDEX credentials_live_per_meeting
        ON credentials(meeting_id) WHERE revoked_at IS NULL
    """,
    "CREATE INDEX credentials_by_device ON credentials(device_digest)",
    """
    CREATE TABLE meeting_facts (
        meeting_id TEXT PRIMARY KEY REFERENCES meetings(id),
        facts TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL REFERENCES teams(id),
        label TEXT NOT NULL,
        digest TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    )
    """,
    """
    CREATE TABLE audit (
        id TEXT PRIMARY KEY,
        at INTEGER NOT NULL,
        actor_id TEXT NOT NULL,
        org_id TEXT NOT NULL,
        team_id TEXT,
        action TEXT NOT NULL,
        target TEXT NOT NULL
    )
    """,
    "CREATE INDEX audit_by_org ON audit(org_id, at, id)",
    # The per-team log. seq comes from log_counters, which only ever grows, so
    # a seq is never reused after trim_log deleted the rows that held it.
    """
    CREATE TABLE log_counters (
        team_id TEXT PRIMARY KEY,
        last_seq INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE log (
        team_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        topic TEXT NOT NULL,
        kind TEXT NOT NULL,
        meeting_id TEXT,
        data TEXT NOT NULL,
        PRIMARY KEY (team_id, seq)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX log_by_meeting ON log(team_id, meeting_id, seq)",
    # append_log computes seq as last_seq + 1 inside its INSERT; this keeps
    # the counter in step within that same statement (hence transaction).
    """
    CREATE TRIGGER log_counters_follow AFTER INSERT ON log BEGIN
        INSERT INTO log_counters (team_id, last_seq) VALUES (NEW.team_id, NEW.seq)
            ON CONFLICT (team_id) DO UPDATE SET last_seq = NEW.seq;
    END
    """,
)

#: v2: staff sessions ended by logout before their cookie expires. A row lives
#: until the cookie it names would have expired anyway (revoke_session prunes).
_V2: Migration = (
    """
    CREATE TABLE revoked_sessions (
        id TEXT PRIMARY KEY,
        until INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
)

#: v3: guest credentials also kept sealed (AES-GCM under the data key, which is
#: never in the database), so staff see a key and link again; the outbox of
#: messages to guests; each team's reminder offsets and template overrides.
_V3: Migration = (
    "ALTER TABLE credentials ADD COLUMN link_sealed TEXT",
    "ALTER TABLE credentials ADD COLUMN key_sealed TEXT",
    """
    CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL,
        meeting_id TEXT NOT NULL REFERENCES meetings(id),
        trigger TEXT NOT NULL,
        recipient TEXT NOT NULL,
        due_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT,
        sent_at INTEGER,
        offset INTEGER,
        claimed_by TEXT,
        claimed_until INTEGER
    )
    """,
    "CREATE INDEX outbox_by_meeting ON outbox(meeting_id, due_at, id)",
    # what a sender looks for: scheduled messages by the time they are ready
    "CREATE INDEX outbox_scheduled ON outbox(due_at) WHERE state = 'scheduled'",
    """
    CREATE TABLE team_messaging (
        team_id TEXT PRIMARY KEY REFERENCES teams(id),
        reminder_offsets TEXT NOT NULL,
        templates TEXT NOT NULL
    )
    """,
)

#: v4: what a practice administers: rooms that take walk-ins or are archived
#: (the kinds that take walk-ins start with them on), team administrators,
#: disabled members and client accounts, retired meeting types.
_V4: Migration = (
    "ALTER TABLE rooms ADD COLUMN walk_ins INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE rooms ADD COLUMN archived INTEGER NOT NULL DEFAULT 0",
    "UPDATE rooms SET walk_ins = 1 WHERE kind IN ('user', 'reception', 'waiting_area')",
    "ALTER TABLE staff ADD COLUMN admin INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE staff ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE teams ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE meeting_types ADD COLUMN retired INTEGER NOT NULL DEFAULT 0",
)

#: v5: online booking: each member's weekly working hours and days off (one
#: row per member), meetings booked by the patient online, and the indexes
#: book_if_free and delete_meeting_type read meetings by.
_V5_BOOKING: Migration = (
    "ALTER TABLE meetings ADD COLUMN booked_online INTEGER NOT NULL DEFAULT 0",
    """
    CREATE TABLE working_hours (
        staff_id TEXT PRIMARY KEY REFERENCES staff(id),
        team_id TEXT NOT NULL REFERENCES teams(id),
        timezone TEXT NOT NULL,
        ranges TEXT NOT NULL,
        days_off TEXT NOT NULL
    )
    """,
    "CREATE INDEX meetings_by_host_start ON meetings(host_id, start)",
    "CREATE INDEX meetings_by_type ON meetings(type_id)",
)

#: v6: invitations of new members (a single-use link, by digest, sealed for
#: the outbox), and the outbox carrying an invitation as well as a meeting's
#: messages: its table is rebuilt with ``meeting_id`` optional (SQLite cannot
#: drop a NOT NULL in place) and an ``invitation_id``.
_V6_INVITATIONS: Migration = (
    """
    CREATE TABLE invitations (
        id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL REFERENCES teams(id),
        staff_id TEXT NOT NULL REFERENCES staff(id),
        digest TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        sealed TEXT,
        used_at INTEGER
    )
    """,
    "CREATE INDEX invitations_by_staff ON invitations(staff_id)",
    """
    CREATE TABLE outbox_v6 (
        id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL,
        meeting_id TEXT REFERENCES meetings(id),
        invitation_id TEXT REFERENCES invitations(id),
        trigger TEXT NOT NULL,
        recipient TEXT NOT NULL,
        due_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT,
        sent_at INTEGER,
        offset INTEGER,
        claimed_by TEXT,
        claimed_until INTEGER,
        CHECK ((meeting_id IS NULL) != (invitation_id IS NULL))
    )
    """,
    """
    INSERT INTO outbox_v6 (id, team_id, meeting_id, trigger, recipient, due_at, created_at,
        state, attempts, last_error, sent_at, offset, claimed_by, claimed_until)
    SELECT id, team_id, meeting_id, trigger, recipient, due_at, created_at,
        state, attempts, last_error, sent_at, offset, claimed_by, claimed_until FROM outbox
    """,
    "DROP TABLE outbox",
    "ALTER TABLE outbox_v6 RENAME TO outbox",
    "CREATE INDEX outbox_by_meeting ON outbox(meeting_id, due_at, id)",
    "CREATE INDEX outbox_scheduled ON outbox(due_at) WHERE state = 'scheduled'",
)

#: every migration, oldest first; the schema version is len(MIGRATIONS)
MIGRATIONS: tuple[Migration, ...] = (_V1, _V2, _V3, _V4, _V5_BOOKING, _V6_INVITATIONS)

#: the version a fully migrated database is at
LATEST_VERSION = len(MIGRATIONS)

#: record tables, by rooms/ dataclass name (used by the store and the schema test)
TABLES: dict[str, str] = {
    "Organisation": "organisations",
    "Team": "teams",
    "StaffAccount": "staff",
    "Group": "groups",
    "Room": "rooms",
    "MeetingType": "meeting_types",
    "Meeting": "meetings",
    "Credential": "credentials",
    "ApiKey": "api_keys",
    "AuditEntry": "audit",
    "OutboxMessage": "outbox",
    "TeamMessaging": "team_messaging",
    "WorkingHours": "working_hours",
    "Invitation": "invitations",
}
