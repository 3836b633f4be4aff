"""The tokens of the links a patient acts from (rooms.patient_links): the page
where they pick a proposed slot, and the page where they review a meeting.

A token is ``<meeting id>.<mac>``: the mac is HMAC-SHA256, under a key
derived from the data key, of the purpose and the meeting id. So a token is
made again whenever a message is rendered, is never stored anywhere, opens
only its own meeting and purpose, and cannot be forged without the data key
(256 bits, nothing to guess). Whether the link still does anything is decided
from the meeting (rooms.patient_links); a token that does not verify gets the
uniform ``token_invalid``.

The pages take the token out of the address bar at once (as web/join.html
does) and send it in the ``X-Vestibule-Link`` header, never in a URL of the
API, so it reaches no access log.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re

from rooms.patient_links import Purpose
from signalling.sealing import parse_data_key

#: the request header that carries a patient link's token to the API
LINK_HEADER = "X-Vestibule-Link"
#: the page of each purpose (signalling/pages.py serves them)
PAGE = {Purpose.PICK: "/pick", Purpose.REVIEW: "/review"}
#: a meeting id is short hex (signalling.api.scope.new_id); anything else is no token
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAC_CHARS = 43  # 32 bytes, URL-safe base64 without padding


class PatientLinks:
    """Makes and checks patient link tokens under one data key."""

    __slots__ = ("_key",)

    def __init__(self, data_key: str) -> None:
        # A key of its own, so that the data key itself is used for nothing but sealing.
        self._key = hmac.new(
            parse_data_key(data_key), b"vestibule patient links v1", hashlib.sha256
        ).digest()

    def _mac(self, purpose: Purpose, meeting_id: str) -> str:
        mac = hmac.new(self._key, f"{purpose}:{meeting_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def token(self, purpose: Purpose, meeting_id: str) -> str:
        return f"{meeting_id}.{self._mac(purpose, meeting_id)}"

    def url(self, base_url: str, purpose: Purpose, meeting_id: str) -> str:
        return f"{base_url}{PAGE[purpose]}/{self.token(purpose, meeting_id)}"

    def meeting_of(self, purpose: Purpose, token: str) -> str | None:
        """The meeting id a token of ``purpose`` names, or None if it does not verify."""
        meeting_id, dot, mac = token.strip().rpartition(".")
        if not dot or len(mac) != _MAC_CHARS or not _ID.fullmatch(meeting_id):
            return None
        expected = self._mac(purpose, meeting_id)
        return meeting_id if hmac.compare_digest(expected, mac) else None


@functools.lru_cache(maxsize=4)
def patient_links_for(data_key: str) -> PatientLinks:
    """The PatientLinks of a data key setting (one per key, made once)."""
    return PatientLinks(data_key)
