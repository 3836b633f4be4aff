"""The tiny return stream that lets the server measure round-trip time.

aiortc computes RTT only for streams it *sends* (from the receiver reports the browser
returns for them), so on a sendrecv offer the check sends back a 64x48 mid-grey video
at 5 fps (a few kbit/s, negligible encoding cost), or silence on audio when only audio
is sendrecv. See :mod:`mediacheck.peer` for why this beats client-reported RTT.
"""

from __future__ import annotations

import asyncio
import fractions
import time

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame

#: RTP clock rate of video (RFC 7741, VP8).
VIDEO_CLOCK_RATE = 90_000


class ReturnVideoTrack(MediaStreamTrack):
    """The tiny return stream that lets aiortc measure RTT: 64x48 mid-grey at 5 fps."""

    kind = "video"
    FPS = 5

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._count += 1
            await asyncio.sleep(self._start + self._count / self.FPS - time.monotonic())
        frame = VideoFrame(width=64, height=48)
        for plane in frame.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = self._count * (VIDEO_CLOCK_RATE // self.FPS)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        return frame
