"""A synthetic browser for tests and load tests: an aiortc peer sending generated media.

Not used by the server. :class:`PatternVideoTrack` sends a moving pattern (or black
frames), :class:`ToneAudioTrack` a tone, faint noise or digital silence, and
:class:`SyntheticClient` builds the offer the way a browser page should: ICE gathering
completed before the offer is sent, no STUN server (``iceServers=[]``).
"""

from __future__ import annotations

import asyncio
import enum
import fractions
import functools
import math
import random
import time
from array import array

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, CodecContext, Packet, VideoFrame
from av.video.codeccontext import VideoCodecContext

from mediacheck.offer import ice_configuration

VIDEO_CLOCK_RATE = 90_000
AUDIO_RATE = 48_000
AUDIO_PTIME = 0.020  # 20 ms frames, as browsers send Opus


class VideoPattern(enum.StrEnum):
    MOVING = "moving"  # scrolling noise: never black, never frozen
    BLACK = "black"  # Y = 16 (video black in limited range): a covered lens
    FROZEN = "frozen"  # the same picture every frame


class AudioPattern(enum.StrEnum):
    TONE = "tone"  # 440 Hz at -20 dBFS
    FAINT = "faint"  # noise at about -70 dBFS: "silent" but not digital zero
    ZERO = "zero"  # every sample 0: a muted microphone


class _Paced:
    """Paces frames against the clock so a track sends in real time."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._start: float | None = None
        self.count = 0

    async def next(self) -> int:
        if self._start is None:
            self._start = time.monotonic()
        else:
            self.count += 1
            await asyncio.sleep(self._start + self.count * self._interval - time.monotonic())
        return self.count


class PatternVideoTrack(MediaStreamTrack):
    """Generated video of a given size and frame rate."""

    kind = "video"

    def __init__(
        self,
        pattern: VideoPattern = VideoPattern.MOVING,
        width: int = 320,
        height: int = 240,
        fps: float = 30.0,
    ) -> None:
        super().__init__()
        self.pattern = pattern
        self.width, self.height, self.fps = width, height, fps
        self._pace = _Paced(1 / fps)
        self._noise: bytes | None = None

    def _texture(self, line_size: int, rows: int) -> bytes:
        # A random mosaic of 8x8 blocks, twice as tall as the frame: each frame is a slice
        # of it scrolled down a few rows, so every frame differs and the encoder has
        # camera-like detail (edges, motion) to spend bits on. Generated once per track.
        if self._noise is None or len(self._noise) != 2 * line_size * rows:
            rng = random.Random(7)  # noqa: S311 - test signal, not security
            block = 8
            lines = []
            for _ in range(2 * rows // block + 1):
                cells = rng.randbytes(line_size // block + 1)
                line = bytes(c for c in cells for _ in range(block))[:line_size]
                lines.append(line * block)
            self._noise = b"".join(lines)[: 2 * line_size * rows]
        return self._noise

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._pace.next()
        frame = self.render(index)
        frame.pts = int(index * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        return frame

    def render(self, index: int) -> VideoFrame:
        """Frame number ``index`` of the pattern (no timestamps set)."""
        frame = VideoFrame(width=self.width, height=self.height)
        luma = frame.planes[0]
        rows = luma.buffer_size // luma.line_size
        if self.pattern == VideoPattern.BLACK:
            luma.update(bytes([16]) * luma.buffer_size)
        else:
            noise = self._texture(luma.line_size, rows)
            shift = 0 if self.pattern == VideoPattern.FROZEN else (index * 4) % rows
            start = shift * luma.line_size
            luma.update(noise[start : start + luma.buffer_size])
        for chroma in frame.planes[1:]:
            chroma.update(bytes([128]) * chroma.buffer_size)
        return frame


class ReplayVideoTrack(MediaStreamTrack):
    """Pre-encoded VP8 of a moving pattern, replayed in a loop: browser-like video for
    load tests without the client paying for the encoding (aiortc sends packets as is).

    The loop restarts on the first frame, the only keyframe, so the stream stays
    decodable; the receiver pays the full decoding cost of every frame.
    """

    kind = "video"

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        bitrate: int = 1_000_000,
        seconds: float = 2.0,
    ) -> None:
        super().__init__()
        self.fps = fps
        self._packets = _encode_vp8(width, height, fps, bitrate, seconds)
        self._pace = _Paced(1 / fps)

    async def recv(self) -> Packet:  # type: ignore[type-arg]
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._pace.next()
        packet = Packet(self._packets[index % len(self._packets)])
        packet.pts = int(index * VIDEO_CLOCK_RATE / self.fps)
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        return packet


@functools.lru_cache(maxsize=4)
def _encode_vp8(width: int, height: int, fps: float, bitrate: int, seconds: float) -> list[bytes]:
    """Encode ``seconds`` of the pattern once, like a browser would (realtime VP8, CBR)."""
    source = PatternVideoTrack(width=width, height=height)
    codec = CodecContext.create("libvpx", "w")
    assert isinstance(codec, VideoCodecContext)
    codec.width, codec.height = source.width, source.height
    codec.pix_fmt = "yuv420p"
    codec.bit_rate = bitrate
    codec.framerate = fractions.Fraction(int(fps), 1)
    codec.time_base = fractions.Fraction(1, int(fps))
    codec.gop_size = 100_000  # one keyframe: the first frame
    codec.options = {  # constant bitrate, as aiortc and browsers encode for real time
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "bufsize": str(bitrate),
        "undershoot-pct": "100",
    }
    packets: list[bytes] = []
    for index in range(max(1, int(seconds * fps))):
        frame = source.render(index)
        frame.pts = index
        frame.time_base = codec.time_base
        packets.extend(bytes(p) for p in codec.encode(frame))
    packets.extend(bytes(p) for p in codec.encode(None))
    return [p for p in packets if p]


class ToneAudioTrack(MediaStreamTrack):
    """Generated mono 48 kHz audio in 20 ms frames."""

    kind = "audio"

    def __init__(self, pattern: AudioPattern = AudioPattern.TONE) -> None:
        super().__init__()
        self.pattern = pattern
        self._samples = int(AUDIO_RATE * AUDIO_PTIME)
        self._pace = _Paced(AUDIO_PTIME)
        self._random = random.Random(4)  # noqa: S311 - test signal, not security

    def _pcm(self, index: int) -> bytes:
        n = self._samples
        if self.pattern == AudioPattern.ZERO:
            return bytes(2 * n)
        if self.pattern == AudioPattern.FAINT:
            # Uniform noise in +-18 has an RMS of ~10.4, i.e. about -70 dBFS.
            return array("h", (self._random.randint(-18, 18) for _ in range(n))).tobytes()
        amplitude = 32768 * 10 ** (-20 / 20) * math.sqrt(2)  # RMS -20 dBFS
        start = index * n
        return array(
            "h",
            (
                int(amplitude * math.sin(2 * math.pi * 440 * (start + i) / AUDIO_RATE))
                for i in range(n)
            ),
        ).tobytes()

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._pace.next()
        frame = AudioFrame(format="s16", layout="mono", samples=self._samples)
        frame.planes[0].update(self._pcm(index))
        frame.pts = index * self._samples
        frame.sample_rate = AUDIO_RATE
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


class SyntheticClient:
    """A client peer that offers the given tracks and drains whatever it receives."""

    def __init__(
        self,
        video: MediaStreamTrack | None = None,
        audio: MediaStreamTrack | None = None,
        direction: str = "sendrecv",
    ) -> None:
        self.pc = RTCPeerConnection(configuration=ice_configuration(()))
        self._tracks = [t for t in (audio, video) if t is not None]
        self._direction = direction
        self._drains: set[asyncio.Task[None]] = set()
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        task = asyncio.get_running_loop().create_task(self._drain(track))
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    @staticmethod
    async def _drain(track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            return

    async def offer(self) -> str:
        """The offer SDP, with every candidate gathered (aiortc gathers in setLocalDescription)."""
        for track in self._tracks:
            self.pc.addTransceiver(track, direction=self._direction)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer_sdp: str, answer_type: str = "answer") -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type=answer_type))

    async def close(self) -> None:
        try:
            await self.pc.close()
        finally:
            for track in self._tracks:
                track.stop()
            drains = list(self._drains)
            for task in drains:
                task.cancel()
            await asyncio.gather(*drains, return_exceptions=True)
