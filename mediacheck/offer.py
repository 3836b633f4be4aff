"""What the browser offers, and how our side of the connection is configured.

**No trickle ICE.** aiortc gathers all its candidates in ``setLocalDescription`` and
does not trickle: the browser must wait for ``icegatheringstatechange == "complete"``
and then send ``pc.localDescription`` (which carries its candidates) as
``mediacheck.offer``; our answer likewise carries all of ours.

**ICE servers** are always set explicitly from settings; an empty list means host
candidates only. aiortc would otherwise use a public Google STUN server by default,
which this deployment must never contact unasked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.sdp import SessionDescription


def ice_configuration(servers: tuple[Mapping[str, Any], ...]) -> RTCConfiguration:
    """An explicit :class:`RTCConfiguration`.

    ``()`` gives ``iceServers=[]`` (host candidates only), never aiortc's default STUN.
    """
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=server["urls"],
                username=server.get("username"),
                credential=server.get("credential"),
            )
            for server in servers
        ]
    )


@dataclass(frozen=True)
class OfferSummary:
    """Which kinds the browser offers to send, and whether it will also receive them."""

    video: bool = False
    audio: bool = False
    video_sendrecv: bool = False
    audio_sendrecv: bool = False


class OfferRejected(ValueError):
    """An offer the check cannot use. Its message is safe to show and to log: it never
    quotes the SDP (which carries the ICE password and DTLS fingerprint)."""


def summarise_offer(sdp: str) -> OfferSummary:
    """Read an offer's media sections; raises :class:`OfferRejected` if aiortc cannot."""
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises assorted errors quoting the input
        raise OfferRejected(f"the offer is not valid SDP ({type(exc).__name__})") from None
    if not parsed.media:
        raise OfferRejected("the offer has no media sections")
    sends: dict[str, bool] = {"audio": False, "video": False}
    both: dict[str, bool] = {"audio": False, "video": False}
    for media in parsed.media:
        if media.kind not in sends or media.port == 0:
            continue
        direction = media.direction or "sendrecv"
        if direction in ("sendrecv", "sendonly"):
            sends[media.kind] = True
        if direction == "sendrecv":
            both[media.kind] = True
    return OfferSummary(
        video=sends["video"],
        audio=sends["audio"],
        video_sendrecv=both["video"],
        audio_sendrecv=both["audio"],
    )
