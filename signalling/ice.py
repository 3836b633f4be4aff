"""ICE servers for ``welcome``: STUN as configured, TURN with short-lived
credentials in the TURN REST API scheme coturn expects (``use-auth-secret``):
username ``"<expiry unix time>:<participant>"``, credential
base64(HMAC-SHA1(shared secret, username)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from signalling.settings import Settings


def turn_credential(secret: str, participant: str, expiry: int) -> tuple[str, str]:
    username = f"{expiry}:{participant}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(settings: Settings, participant: str, now: float) -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret:
        username, credential = turn_credential(
            settings.turn_secret, participant, int(now) + settings.turn_ttl
        )
        servers.append(
            {"urls": list(settings.turn_urls), "username": username, "credential": credential}
        )
    return servers
