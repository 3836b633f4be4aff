"""Settings: one frozen dataclass, built from a mapping (flags or VESTIBULE_* env).

Nothing below create_app reads os.environ: the CLI builds Settings and passes it in,
and tests build it from a dict.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

from rooms.errors import Invalid

ENV_PREFIX = "VESTIBULE_"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    #: the embedded default: one SQLite file (ignored when redis_url is set)
    db_path: str = "vestibule.sqlite3"
    #: with a Redis URL, records, tokens, the presence log and the bus live in Redis
    redis_url: str = ""
    #: the URL patients are sent (links in emails); defaults to http://host:port
    public_url: str = ""
    #: origins besides the server's own whose pages may use the staff session
    #: cookie (signalling.origin), e.g. https://portal.clinic.example
    allowed_origins: tuple[str, ...] = ()
    #: signs staff session cookies; random per process when empty (sessions then end
    #: at restart, which is acceptable for the demo and says so at start)
    secret: str = ""
    #: HS256 secret for staff JWTs from integrating systems (empty: JWTs refused)
    jwt_secret: str = ""
    #: longest a staff JWT may live, in seconds: one whose ``exp`` is further ahead
    #: than this (or further than this after its ``iat``) is refused
    jwt_max_lifetime: int = 3600
    #: STUN/TURN for welcome; TURN credentials use the TURN REST API scheme
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = ""
    turn_ttl: int = 3600
    log_format: str = "console"
    log_level: str = "info"
    # -- connection limits (docs/protocol.md, "Limits") -----------------------
    hello_timeout: float = 5.0
    heartbeat: float = 20.0
    resume_window: float = 30.0
    max_message: int = 64 * 1024
    rate: float = 100.0
    burst: int = 200
    send_queue: int = 256
    # -- booking -----------------------------------------------------------------
    #: how far ahead, in days, a meeting may be booked, moved or proposed (422 beyond)
    booking_horizon_days: int = 731
    # -- online booking (signalling.api.booking) ---------------------------------
    #: how far ahead, in days, a clinician's public booking page offers free slots
    online_booking_days: int = 28
    #: online bookings tried per client address, and per patient email, per hour
    #: (more are rate_limited); failed tries count too
    online_bookings_per_hour: int = 5
    #: the legal line every public booking page shows under the practice's details
    booking_legal_notice: str = (
        "The practice uses the details you give only to arrange and hold this"
        " appointment, and sends you its confirmation and reminders by email."
    )
    # -- guest credentials -----------------------------------------------------
    link_before_minutes: int = 15
    link_grace_minutes: int = 120
    #: guest-key attempts per client address per minute (more are rate_limited)
    key_attempts_per_address: int = 10
    #: wrong guest keys for one room within a minute that raise the alarm (the
    #: metric vestibule_guest_key_alarms_total and a warning line); refuses nobody
    key_attempts_per_room: int = 30
    #: walk-in hellos per client address per minute (more are rate_limited)
    walk_ins_per_address: int = 5
    #: walk-in hellos per room per minute, from all addresses (more are rate_limited)
    walk_ins_per_room: int = 30
    #: base64 of the 32-byte AES-GCM key that seals guest links and keys at rest
    #: (signalling.sealing); never stored in the database. ``vestibule serve``
    #: refuses to start without it unless it runs the demo, which keeps a
    #: generated one in a file next to its database (signalling.cli)
    data_key: str = ""
    # -- messages to guests (signalling.outbox) ------------------------------------
    #: the SMTP server, ``smtp://user:pass@host:587?starttls=1`` or ``smtps://...``
    #: (implicit TLS); empty: messages stay scheduled in the outbox, unsent
    smtp_url: str = ""
    #: the From address of messages to guests
    mail_from: str = "Vestibule <no-reply@vestibule.invalid>"
    #: attempts per message before it is ``failed``
    mail_attempts: int = 5
    #: seconds one SMTP conversation may take
    mail_timeout: float = 30.0
    # -- presence log -----------------------------------------------------------
    log_retention: int = 10_000
    # -- webhooks (signalling.webhooks): every log entry POSTed to each URL -------
    webhook_urls: tuple[str, ...] = ()
    #: HMAC-SHA256 key of the X-Vestibule-Signature header (empty: no signature)
    webhook_secret: str = ""
    #: attempts per delivery before it goes to the dead-letter count
    webhook_attempts: int = 5
    #: first retry delay in seconds, doubled on each further attempt
    webhook_backoff: float = 0.5
    #: entries waiting for delivery; past it the oldest is dropped (dead letter)
    webhook_queue: int = 1000
    # -- media check -------------------------------------------------------------
    mediacheck_workers: int = 0
    mediacheck_queue: int = 8
    mediacheck: bool = True
    #: seed the demo organisation into an empty database
    demo: bool = False
    node_id: str = field(default_factory=lambda: "n" + secrets.token_hex(3))

    @property
    def booking_horizon(self) -> timedelta:
        return timedelta(days=self.booking_horizon_days)

    @property
    def online_booking_horizon(self) -> timedelta:
        return timedelta(days=self.online_booking_days)

    @property
    def link_before(self) -> timedelta:
        return timedelta(minutes=self.link_before_minutes)

    @property
    def link_grace(self) -> timedelta:
        return timedelta(minutes=self.link_grace_minutes)

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    def with_secret(self) -> Settings:
        """This settings object with a random cookie secret if none was given."""
        return self if self.secret else replace(self, secret=secrets.token_urlsafe(32))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, env: bool = False) -> Settings:
        """Build from a mapping of field names (or, with ``env``, VESTIBULE_* names).

        Strings are converted to the field's type; unknown names are ignored when
        reading the environment and rejected otherwise.
        """
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for raw_key, raw in values.items():
            key = raw_key
            if env:
                if not raw_key.startswith(ENV_PREFIX):
                    continue
                key = raw_key[len(ENV_PREFIX) :].lower()
            if key not in known:
                if env:
                    continue
                raise Invalid(f"unknown setting {key!r}")
            if raw is None:
                continue
            kwargs[key] = _convert(key, known[key].type, raw)
        return cls(**kwargs)


def _convert(key: str, annotation: object, raw: Any) -> Any:
    kind = str(annotation)
    if not isinstance(raw, str):
        return tuple(raw) if kind.startswith("tuple") else raw
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if kind.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError:
        raise Invalid(f"setting {key}: cannot read {raw!r} as {kind}") from None
    return raw
