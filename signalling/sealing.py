"""Guest credentials sealed at rest: AES-GCM under the data key.

The store looks credentials up by SHA-256 digest (rooms.tokens); beside the
digests it keeps the clear link token and guest key *sealed*, so that staff of
the team can read a key to a patient again and the outbox can put the link in
a reminder. The data key comes from the settings (``data_key``, base64 of 32
bytes, ``VESTIBULE_DATA_KEY``) and is never written to the database: a copy of
the database alone reveals no credential.

A sealed value is ``v1.`` + base64url(12-byte random nonce + ciphertext + tag).
The associated data binds it to its credential and field (``<credential
id>:link`` or ``:key``), so a sealed value copied into another row, or into
the other field, does not open. A value that does not open (another data key,
a damaged row) reads as absent: the staff view shows no key, and a re-issue
makes a new one.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rooms.credentials import Credential
from rooms.tokens import IssuedCredential, format_key

if TYPE_CHECKING:
    from signalling.store.base import Store

KEY_BYTES = 32
_NONCE_BYTES = 12
_PREFIX = "v1."


class DataKeyError(ValueError):
    """The data key setting is not base64 of 32 bytes."""


def parse_data_key(text: str) -> bytes:
    """The 32-byte key from its base64 (standard or URL-safe) setting."""
    cleaned = text.strip()
    try:
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise DataKeyError("data_key is not base64") from None
    if len(raw) != KEY_BYTES:
        raise DataKeyError(f"data_key must be {KEY_BYTES} bytes (base64), got {len(raw)}")
    return raw


def new_data_key() -> str:
    """A fresh data key, as the setting spells it (URL-safe base64)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


@dataclass(frozen=True, slots=True)
class Revealed:
    """A credential's clear values, opened from the store."""

    link_token: str
    guest_key: str


class Sealer:
    """Seals and opens credential values with one data key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise DataKeyError(f"the data key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, data_key: str) -> Sealer:
        return cls(parse_data_key(data_key))

    def seal(self, clear: str, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, clear.encode("utf-8"), context.encode("utf-8"))
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str | None, context: str) -> str | None:
        """The clear value, or None if ``sealed`` is absent or does not open."""
        if not sealed or not sealed.startswith(_PREFIX):
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_PREFIX) :])
            clear = self._aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode("utf-8")
            )
            return clear.decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError):
            return None

    def seal_issued(self, issued: IssuedCredential) -> IssuedCredential:
        """``issued`` with its stored credential carrying both clear values sealed."""
        cid = issued.credential.id
        credential = replace(
            issued.credential,
            link_sealed=self.seal(issued.link_token, f"{cid}:link"),
            key_sealed=self.seal(issued.guest_key, f"{cid}:key"),
        )
        return replace(issued, credential=credential)

    def reveal(self, credential: Credential | None) -> Revealed | None:
        """The clear link token and guest key of a stored credential, if both open."""
        if credential is None:
            return None
        link = self.open(credential.link_sealed, f"{credential.id}:link")
        key = self.open(credential.key_sealed, f"{credential.id}:key")
        if link is None or key is None:
            return None
        return Revealed(link, key)


def demo_data_key(db_path: str) -> str:
    """The demo's data key: kept in ``<db_path>.key`` (created, owner-only, on
    first use), so that restarting the demo keeps the links it sealed readable."""
    path = Path(f"{db_path}.key")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        parse_data_key(key)
        return key
    key = new_data_key()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key


def resolve_data_key(data_key: str, *, demo: bool, db_path: str) -> str:
    """The data key ``vestibule serve`` runs with: the setting (checked), the
    demo's own file, or DataKeyError saying what to do."""
    if data_key:
        parse_data_key(data_key)
        return data_key
    if demo:
        return demo_data_key(db_path)
    raise DataKeyError(
        "VESTIBULE_DATA_KEY is not set: it seals guest links and keys at rest."
        " Make one with: python -c 'import base64,secrets;"
        " print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'"
        " and keep it out of the database's backups"
    )


@functools.lru_cache(maxsize=4)
def sealer_for(data_key: str) -> Sealer:
    """The Sealer of a data key setting (one per key, made once)."""
    return Sealer.from_setting(data_key)


async def show_guest_keys(
    store: Store, data_key: str, views: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Staff views of meetings (signalling.views.meeting_view) with each
    meeting's current guest key opened from its sealed copy (the dashboard's
    snapshot and the views in its feed)."""
    sealer = sealer_for(data_key)
    credentials = await store.live_credentials([view["id"] for view in views])
    for view in views:
        shown = sealer.reveal(credentials.get(view["id"]))
        view["guest_key"] = None if shown is None else format_key(shown.guest_key)
    return views
