"""One media check as a real aiortc peer: answer the browser's offer, receive, measure.

Lifecycle of a :class:`MediaProbe` (one per check, closed in a ``finally``)::

    answer(offer) --> CONNECTING --ICE+DTLS connected--> RECEIVING --window over--> ANALYSING
                          |  (connect_timeout or ICE "failed": ice_failed)
                          +--> ANALYSING

RECEIVING first waits up to ``first_frame_timeout`` for a first frame of every offered
kind, then measures for ``window`` seconds; :func:`run_check` caps the whole thing at
``hard_cap`` (then the verdict is ``timeout``).

Trickle ICE is not supported and ICE servers are explicit: see :mod:`mediacheck.offer`.

**Round-trip time.** aiortc computes RTT only for streams it *sends* (from the
receiver reports the browser returns for them). We therefore send a tiny return
stream on a sendrecv offer: a 64x48 grey video at 5 fps (a few kbit/s, negligible
encode cost) when video is sendrecv, else silence on audio. Video is preferred
because browsers send RTCP for video about every second but for audio only about
every five, which a 4 s window might miss. We chose this over having the browser
report its candidate-pair RTT because the figure is then measured by the server,
the same way for every client, and cannot be absent or forged by a page script;
the cost is that a sendonly offer yields no RTT (``rtt_ms`` is then ``None``).
The browser page offers sendrecv and may simply ignore the returned track.

**Bitrates.** aiortc's ``inbound-rtp`` stats carry no byte count, so the received
total comes from the DTLS transport's ``bytesReceived`` over the window, and the
video bitrate from the octet counts of the browser's RTCP sender reports
(``remote-outbound-rtp``) scaled by the measured loss.

No media is stored: frames are reduced to running totals in :mod:`mediacheck.analysis`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from mediacheck.analysis import AudioAnalyser, VideoAnalyser
from mediacheck.offer import OfferRejected, OfferSummary, ice_configuration, summarise_offer
from mediacheck.result import CheckResult, Phase, Progress
from mediacheck.returnstream import ReturnVideoTrack
from mediacheck.verdict import Measurements, decide

log = structlog.get_logger("mediacheck.peer")

#: RTP clock rates that ``inbound-rtp`` jitter is expressed in (RFC 7587 Opus, RFC 7741 VP8).
AUDIO_CLOCK_RATE = 48_000
VIDEO_CLOCK_RATE = 90_000
#: How often the window loop wakes: progress to the browser, sender-report sampling.
TICK = 1.0


@dataclass(frozen=True)
class ProbeSettings:
    """Time budget and ICE servers of one check (seconds; docs/protocol.md, "Media check")."""

    ice_servers: tuple[Mapping[str, Any], ...] = ()
    connect_timeout: float = 10.0
    first_frame_timeout: float = 3.0
    window: float = 4.0
    hard_cap: float = 15.0

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "first_frame_timeout", "window", "hard_cap"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


@dataclass
class _SenderReports:
    """First and latest RTCP sender report seen for one kind: (receipt time, octets sent)."""

    first: tuple[float, int] | None = None
    last: tuple[float, int] | None = None

    def add(self, at: float, octets: int) -> None:
        if self.first is None:
            self.first = (at, octets)
        elif at > self.first[0]:
            self.last = (at, octets)

    def kbps(self) -> float | None:
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            return None
        return (self.last[1] - self.first[1]) * 8 / (self.last[0] - self.first[0]) / 1000


@dataclass
class _Timeline:
    """When things happened, in seconds since the check began."""

    ice_connected: float | None = None
    first_video: float | None = None
    first_audio: float | None = None
    window_start: float | None = None
    window_end: float | None = None
    video_frames_at_start: int = 0
    video_frames_at_end: int = 0
    bytes_at_start: int | None = None
    bytes_at_end: int | None = None
    sender_reports: dict[str, _SenderReports] = field(
        default_factory=lambda: {"audio": _SenderReports(), "video": _SenderReports()}
    )


class MediaProbe:
    """One check's peer connection and measurements. Always ``await close()``."""

    def __init__(
        self,
        settings: ProbeSettings,
        check_id: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._t0 = clock()
        self._log = log.bind(check_id=check_id)
        self._pc = RTCPeerConnection(configuration=ice_configuration(settings.ice_servers))
        self._offer = OfferSummary()
        self._video = VideoAnalyser()
        self._audio = AudioAnalyser()
        self._analysing = True
        self._timeline = _Timeline()
        self._consumers: set[asyncio.Task[None]] = set()
        self._return_track: MediaStreamTrack | None = None
        self._connected = asyncio.Event()
        self._ended = asyncio.Event()  # ICE failed, or the connection dropped/closed
        self._first_frame = asyncio.Event()
        self._connection_state = "new"
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._pc.on("iceconnectionstatechange", self._on_ice_state)
        self._pc.on("track", self._on_track)

    def elapsed(self) -> float:
        return self._clock() - self._t0

    # --- peer events ---------------------------------------------------------------

    def _on_connection_state(self) -> None:
        new = self._pc.connectionState
        self._log.debug("connectionState", old=self._connection_state, new=new)
        self._connection_state = new
        if new == "connected":
            self._connected.set()
        elif new in ("failed", "closed"):
            self._ended.set()

    def _on_ice_state(self) -> None:
        state = self._pc.iceConnectionState
        if state in ("completed", "connected") and self._timeline.ice_connected is None:
            self._timeline.ice_connected = self.elapsed()
        elif state == "failed":
            self._ended.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        task = asyncio.get_running_loop().create_task(self._consume(track))
        self._consumers.add(task)
        task.add_done_callback(self._consumers.discard)

    async def _consume(self, track: MediaStreamTrack) -> None:
        """Read a received track to its end (it ends when the peer closes)."""
        timeline = self._timeline
        try:
            while True:
                frame = await track.recv()
                if not self._analysing:
                    continue  # keep draining so the decoder never blocks; judge nothing
                if isinstance(frame, VideoFrame):
                    if timeline.first_video is None:
                        timeline.first_video = self.elapsed()
                        self._first_frame.set()
                    self._video.add(frame)
                elif isinstance(frame, AudioFrame):
                    if timeline.first_audio is None:
                        timeline.first_audio = self.elapsed()
                        self._first_frame.set()
                    self._audio.add(frame)
        except MediaStreamError:
            return

    # --- the check -----------------------------------------------------------------

    async def answer(self, sdp: str, sdp_type: str = "offer") -> RTCSessionDescription:
        """Apply the browser's offer and return our answer (candidates included).

        Raises :class:`OfferRejected` for an offer aiortc cannot parse or apply.
        """
        if sdp_type != "offer":
            raise OfferRejected("a media check needs an SDP offer")
        self._offer = summarise_offer(sdp)
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=sdp_type))
        if self._offer.video_sendrecv:
            self._return_track = ReturnVideoTrack()
        elif self._offer.audio_sendrecv:
            self._return_track = AudioStreamTrack()
        if self._return_track is not None:
            self._pc.addTrack(self._return_track)
        answer = await self._pc.createAnswer()
        await self._pc.setLocalDescription(answer)
        local = self._pc.localDescription
        return RTCSessionDescription(sdp=local.sdp, type=local.type)

    async def measure(self, on_progress: Callable[[Progress], None]) -> Measurements:
        """Connect, receive and measure, then read the stats; returns what was measured."""
        settings = self.settings
        on_progress(Progress(Phase.CONNECTING, self.elapsed()))
        remaining = settings.connect_timeout - self.elapsed()
        if not await self._wait_connected(remaining):
            self._analysing = False
            on_progress(Progress(Phase.ANALYSING, self.elapsed()))
            return self._measurements(connected=False)

        on_progress(Progress(Phase.RECEIVING, self.elapsed()))
        await self._wait_first_frames(settings.first_frame_timeout)
        timeline = self._timeline
        if timeline.first_video is not None or timeline.first_audio is not None:
            await self._sample_stats(at_start=True)
            await self._run_window(on_progress)
        self._analysing = False
        timeline.window_end = self.elapsed()
        timeline.video_frames_at_end = self._video.stats.frames
        on_progress(Progress(Phase.ANALYSING, self.elapsed()))
        return await self._final_measurements()

    async def _wait_connected(self, budget: float) -> bool:
        connected = asyncio.ensure_future(self._connected.wait())
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait(
                {connected, ended}, timeout=max(0.0, budget), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            connected.cancel()
            ended.cancel()
        return self._connected.is_set() and not self._ended.is_set()

    def _waiting_for_first_frame(self) -> bool:
        timeline = self._timeline
        return (self._offer.video and timeline.first_video is None) or (
            self._offer.audio and timeline.first_audio is None
        )

    async def _wait_first_frames(self, budget: float) -> None:
        deadline = self._clock() + budget
        while self._waiting_for_first_frame() and not self._ended.is_set():
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            self._first_frame.clear()
            try:
                await asyncio.wait_for(self._first_frame.wait(), remaining)
            except TimeoutError:
                return

    async def _run_window(self, on_progress: Callable[[Progress], None]) -> None:
        timeline = self._timeline
        timeline.window_start = self.elapsed()
        timeline.video_frames_at_start = self._video.stats.frames
        end = timeline.window_start + self.settings.window
        while (remaining := end - self.elapsed()) > 0:
            try:
                await asyncio.wait_for(self._ended.wait(), min(TICK, remaining))
            except TimeoutError:
                await self._sample_stats(at_start=False)
                on_progress(Progress(Phase.RECEIVING, self.elapsed()))
            else:
                self._log.info("connection lost during the window")
                return

    async def _sample_stats(self, at_start: bool) -> None:
        """Record transport bytes and the browser's latest sender reports."""
        for receiver in self._pc.getReceivers():
            report = await receiver.getStats()
            for stats in report.values():
                if stats.type == "transport":
                    if at_start:
                        self._timeline.bytes_at_start = stats.bytesReceived
                    else:
                        self._timeline.bytes_at_end = stats.bytesReceived
                elif stats.type == "remote-outbound-rtp" and stats.kind in ("audio", "video"):
                    received_at = stats.timestamp.timestamp()
                    self._timeline.sender_reports[stats.kind].add(received_at, stats.bytesSent)

    async def _final_measurements(self) -> Measurements:
        await self._sample_stats(at_start=False)
        loss: dict[str, float | None] = {"audio": None, "video": None}
        jitter: dict[str, float | None] = {"audio": None, "video": None}
        for receiver in self._pc.getReceivers():
            report = await receiver.getStats()
            for stats in report.values():
                if stats.type != "inbound-rtp" or stats.kind not in loss:
                    continue
                lost = max(0, stats.packetsLost)
                expected = stats.packetsReceived + lost
                loss[stats.kind] = lost / expected if expected else None
                clock_rate = AUDIO_CLOCK_RATE if stats.kind == "audio" else VIDEO_CLOCK_RATE
                jitter[stats.kind] = stats.jitter / clock_rate * 1000
        rtt_ms: float | None = None
        for sender in self._pc.getSenders():
            if sender.track is None:
                continue
            report = await sender.getStats()
            for stats in report.values():
                if stats.type == "remote-inbound-rtp" and stats.roundTripTime is not None:
                    rtt_ms = stats.roundTripTime * 1000
        video_kbps = self._timeline.sender_reports["video"].kbps()
        if video_kbps is not None and loss["video"] is not None:
            video_kbps *= 1 - loss["video"]
        return self._measurements(
            connected=True,
            loss=loss,
            jitter=jitter,
            rtt_ms=rtt_ms,
            video_kbps=video_kbps,
        )

    def _measurements(
        self,
        connected: bool,
        loss: Mapping[str, float | None] | None = None,
        jitter: Mapping[str, float | None] | None = None,
        rtt_ms: float | None = None,
        video_kbps: float | None = None,
        timed_out: bool = False,
    ) -> Measurements:
        timeline = self._timeline
        video, audio = self._video.stats, self._audio.stats
        loss = loss or {}
        jitter = jitter or {}
        fps: float | None = None
        bitrate: float | None = None
        if timeline.window_start is not None and timeline.window_end is not None:
            span = timeline.window_end - timeline.window_start
            if span > 0 and self._offer.video and timeline.first_video is not None:
                fps = (timeline.video_frames_at_end - timeline.video_frames_at_start) / span
            if (
                span > 0
                and timeline.bytes_at_start is not None
                and timeline.bytes_at_end is not None
            ):
                bitrate = (timeline.bytes_at_end - timeline.bytes_at_start) * 8 / span / 1000
        return Measurements(
            connected=connected,
            video_offered=self._offer.video,
            audio_offered=self._offer.audio,
            timed_out=timed_out,
            ice_connected_s=timeline.ice_connected,
            first_video_s=timeline.first_video,
            first_audio_s=timeline.first_audio,
            video_frames=video.frames,
            audio_frames=audio.frames,
            fps=fps,
            width=video.width or None,
            height=video.height or None,
            black_share=video.black_share,
            frozen_share=video.frozen_share,
            audio_all_zero=audio.all_zero,
            audio_max_dbfs=audio.max_dbfs,
            video_loss=loss.get("video"),
            audio_loss=loss.get("audio"),
            video_jitter_ms=jitter.get("video"),
            audio_jitter_ms=jitter.get("audio"),
            rtt_ms=rtt_ms,
            video_kbps=video_kbps,
            bitrate_kbps=bitrate,
        )

    def timed_out(self) -> Measurements:
        """What was measured when the hard cap struck (judged as ``timeout``)."""
        return self._measurements(connected=self._connected.is_set(), timed_out=True)

    async def close(self) -> None:
        """Close the peer (stops aiortc's decoder threads) and drain every track task."""
        self._analysing = False
        try:
            await self._pc.close()
        finally:
            if self._return_track is not None:
                self._return_track.stop()
            consumers = list(self._consumers)
            for task in consumers:
                if not task.done():
                    # Closing ended the tracks, so this normally finishes on its own.
                    task.cancel()
            await asyncio.gather(*consumers, return_exceptions=True)


async def run_check(
    offer_sdp: str,
    offer_type: str,
    settings: ProbeSettings,
    on_answer: Callable[[RTCSessionDescription], None],
    on_progress: Callable[[Progress], None],
    check_id: str = "",
) -> CheckResult:
    """Run one complete check; calls ``on_answer`` once the answer exists.

    Raises :class:`OfferRejected` (before ``on_answer``) for an offer aiortc cannot use; every
    other outcome, the hard cap included, is a :class:`CheckResult`. The peer is
    always closed before this returns.
    """
    probe = MediaProbe(settings, check_id=check_id)
    try:
        try:
            async with asyncio.timeout(settings.hard_cap):
                try:
                    answer = await probe.answer(offer_sdp, offer_type)
                except OfferRejected:
                    raise
                except Exception as exc:  # aiortc raises assorted errors on odd SDP
                    message = f"the offer cannot be applied ({type(exc).__name__})"
                    raise OfferRejected(message) from None
                on_answer(answer)
                measurements = await probe.measure(on_progress)
        except TimeoutError:
            measurements = probe.timed_out()
        return decide(measurements, probe.elapsed())
    finally:
        await probe.close()
