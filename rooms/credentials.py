"""The stored form of a meeting's guest credentials (link token + guest key).

Look-up and comparison use SHA-256 digests only. The clear values are also
kept, *sealed* (encrypted and authenticated by the shell with a data key that
is never stored beside them, signalling.sealing), so that staff of the team can
see a meeting's key and link again and the messages sent to the guest can carry
them. See rooms.tokens for issuing, checking and the single-use rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Credential:
    """A meeting's guest credential: one link token and its second spelling,
    the guest key. Redeeming either consumes both (single use)."""

    id: str
    meeting_id: str
    team_id: str
    room_id: str
    #: hex SHA-256 of the link token
    link_digest: str
    #: hex SHA-256 of "room_id:" + normalised guest key
    key_digest: str
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None = None
    redeemed_at: datetime | None = None
    #: hex SHA-256 of the rejoin secret given to the redeeming device
    device_digest: str | None = None
    #: the link token, sealed (AES-GCM under the data key); None for a
    #: credential issued before sealing existed
    link_sealed: str | None = None
    #: the normalised guest key, sealed likewise
    key_sealed: str | None = None
