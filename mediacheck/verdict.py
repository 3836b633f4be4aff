"""The media check's verdict rules: measurements in, pass/fail + reasons + warnings out.

Pure: no aiortc, asyncio or clock. Every threshold is a named constant citing where
the number comes from, so a product decision to move one is a one-line change here.

Failure reasons stop the patient from joining with a broken setup; warnings tell them
the call will work but may look or sound poor. The order of the findings is stable
(connection, then video, then audio, then network) so the page can show the first one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mediacheck.result import CheckResult, Figure, Finding, Outcome

# --- failure thresholds -------------------------------------------------------------

#: More than a third of frames black fails the camera. Google's testrtc
#: (webrtc/testrtc, camresolutionstest.js) flags "lots of black frames" at > 1/3.
BLACK_FRAME_SHARE_FAIL = 1 / 3
#: A frame is black when the mean luma of its Y plane is below this (0-255 scale).
#: testrtc's black-frame check uses a mean-luma threshold of 20.
BLACK_LUMA_MAX = 20.0
#: ...and no sample of it is brighter than this. A covered lens is dark
#: everywhere; a dim picture with a bright object (Chromium's fake camera, a
#: face lit by a screen in a dark room) is not black even when its mean is low.
#: libwebrtc's own tests accept luma up to 48 as "black" (media/base
#: fakevideorenderer.cc: "Largest value observed is 34").
BLACK_PEAK_LUMA_MAX = 48
#: Below 5 frames per second the video is unusable (testrtc's camera test minimum,
#: as docs/protocol.md, "Media check", says).
FPS_FAIL = 5.0
#: Max RMS below -60 dBFS over 20 ms frames: the microphone hears (almost) nothing.
#: testrtc's microphone test reports low input below -60 dB (its lowVolumeThreshold).
SILENT_DBFS = -60.0
#: Packet loss at or above 10 % is Daily's "bad" network quality (daily.co call-quality docs).
PACKET_LOSS_FAIL = 0.10

# --- warning thresholds -------------------------------------------------------------

#: Loss from 5 % to 10 % is Daily's "poor" tier: the call works but stutters.
PACKET_LOSS_WARN = 0.05
#: Jitter above 30 ms: Twilio's network test marks it as a quality problem
#: (Twilio Voice Insights "high jitter" threshold).
JITTER_WARN_MS = 30.0
#: Round-trip time above 300 ms is Daily's "poor" latency. RTT alone never fails a
#: check (people can still talk), so it is a warning only.
RTT_WARN_MS = 300.0
#: Video below 150 kbps is below OpenTok's lowest recommended tier (Vonage Video
#: API "minimum bandwidth for video" 150 kbps); the picture will be blurry.
VIDEO_KBPS_WARN = 150.0
#: Below 15 fps motion looks choppy (the warning mark; 15 fps is the usual
#: floor of the "smooth video" tiers in vendor quality guides).
FPS_WARN = 15.0
#: More than a third of frames frozen (identical to the one before): same > 1/3 rule
#: testrtc applies to frozen frames as to black ones.
FROZEN_FRAME_SHARE_WARN = 1 / 3


class Reason(enum.StrEnum):
    """Stable codes of failure reasons (sent on the wire in ``mediacheck.result``)."""

    ICE_FAILED = "ice_failed"
    NO_VIDEO = "no_video"
    NO_AUDIO = "no_audio"
    NO_VIDEO_FRAMES = "no_video_frames"
    NO_AUDIO_FRAMES = "no_audio_frames"
    BLACK_VIDEO = "black_video"
    LOW_FPS = "low_fps"
    MUTED = "muted"
    SILENT = "silent"
    PACKET_LOSS = "packet_loss"
    TIMEOUT = "timeout"
    WORKER_FAILED = "worker_failed"
    CANCELLED = "cancelled"


class WarningCode(enum.StrEnum):
    """Stable codes of warnings: the call will work, but not well."""

    SOME_PACKET_LOSS = "some_packet_loss"
    HIGH_JITTER = "high_jitter"
    HIGH_RTT = "high_rtt"
    LOW_BITRATE = "low_bitrate"
    LOW_FRAME_RATE = "low_frame_rate"
    FROZEN_VIDEO = "frozen_video"


MESSAGES: dict[str, str] = {
    Reason.ICE_FAILED: (
        "We could not connect to your device: check your internet connection, "
        "or try another network (some work or hospital networks block video calls)"
    ),
    Reason.NO_VIDEO: "Your browser did not share a camera: allow camera access and try again",
    Reason.NO_AUDIO: (
        "Your browser did not share a microphone: allow microphone access and try again"
    ),
    Reason.NO_VIDEO_FRAMES: (
        "We received no picture from your camera: check it is connected and not used by another app"
    ),
    Reason.NO_AUDIO_FRAMES: (
        "We received no sound from your microphone: check it is connected and selected"
    ),
    Reason.BLACK_VIDEO: (
        "Your camera shows a black image: uncover it or close other apps using it"
    ),
    Reason.LOW_FPS: (
        "Your video is arriving too slowly: close other apps or tabs, or move closer "
        "to your Wi-Fi router"
    ),
    Reason.MUTED: "Your microphone is muted: unmute it (check for a mute switch or key)",
    Reason.SILENT: (
        "We can barely hear your microphone: check it is the right one and not muted, and speak up"
    ),
    Reason.PACKET_LOSS: (
        "Your connection is losing too much data for a video call: move closer to your "
        "Wi-Fi router or try another network"
    ),
    Reason.TIMEOUT: "The check took too long: please try again",
    Reason.WORKER_FAILED: "Something went wrong on our side: please try the check again",
    Reason.CANCELLED: "The check was stopped before it finished",
    WarningCode.SOME_PACKET_LOSS: (
        "Your connection is losing some data: the call may stutter at times"
    ),
    WarningCode.HIGH_JITTER: "Your connection is unsteady: sound and video may break up",
    WarningCode.HIGH_RTT: "Your connection is slow to respond: expect a short delay when talking",
    WarningCode.LOW_BITRATE: (
        "Your connection is slow: your video may look blurry to the clinician"
    ),
    WarningCode.LOW_FRAME_RATE: "Your video is a little choppy: closing other apps may help",
    WarningCode.FROZEN_VIDEO: (
        "Your picture seems to freeze at times: check your camera is not used elsewhere"
    ),
}


def finding(code: Reason | WarningCode) -> Finding:
    """The :class:`Finding` for a code, with its patient-facing message."""
    return Finding(code.value, MESSAGES[code])


@dataclass(frozen=True)
class Measurements:
    """What a check measured; ``None`` means "not measured" (e.g. no such track).

    Shares and losses are fractions in [0, 1]; times in seconds since the check began.
    """

    connected: bool
    video_offered: bool
    audio_offered: bool
    timed_out: bool = False
    ice_connected_s: float | None = None
    first_video_s: float | None = None
    first_audio_s: float | None = None
    video_frames: int = 0
    audio_frames: int = 0
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    black_share: float | None = None
    frozen_share: float | None = None
    audio_all_zero: bool | None = None
    audio_max_dbfs: float | None = None
    video_loss: float | None = None
    audio_loss: float | None = None
    video_jitter_ms: float | None = None
    audio_jitter_ms: float | None = None
    rtt_ms: float | None = None
    video_kbps: float | None = None
    bitrate_kbps: float | None = None

    @property
    def packet_loss(self) -> float | None:
        losses = [x for x in (self.video_loss, self.audio_loss) if x is not None]
        return max(losses) if losses else None

    @property
    def jitter_ms(self) -> float | None:
        jitters = [x for x in (self.video_jitter_ms, self.audio_jitter_ms) if x is not None]
        return max(jitters) if jitters else None

    def figures(self) -> dict[str, Figure]:
        """The measured figures as a flat, JSON-able mapping (units in the names)."""
        return {
            "ice_connected_s": _r(self.ice_connected_s),
            "first_video_s": _r(self.first_video_s),
            "first_audio_s": _r(self.first_audio_s),
            "video_frames": self.video_frames,
            "audio_frames": self.audio_frames,
            "fps": _r(self.fps, 1),
            "width": self.width,
            "height": self.height,
            "resolution": f"{self.width}x{self.height}" if self.width and self.height else None,
            "black_share": _r(self.black_share),
            "frozen_share": _r(self.frozen_share),
            "audio_muted": None if self.audio_all_zero is None else int(self.audio_all_zero),
            "audio_max_dbfs": _r(self.audio_max_dbfs, 1),
            "video_loss": _r(self.video_loss, 4),
            "audio_loss": _r(self.audio_loss, 4),
            "packet_loss": _r(self.packet_loss, 4),
            "video_jitter_ms": _r(self.video_jitter_ms, 1),
            "audio_jitter_ms": _r(self.audio_jitter_ms, 1),
            "rtt_ms": _r(self.rtt_ms, 1),
            "video_kbps": _r(self.video_kbps, 1),
            "bitrate_kbps": _r(self.bitrate_kbps, 1),
        }


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def reasons_for(m: Measurements) -> list[Reason]:
    """The failure reasons, in a stable order (empty: the check passes)."""
    if m.timed_out:
        # The hard cap ends everything else: partial figures are not judged.
        return [Reason.TIMEOUT]
    if not m.connected:
        return [Reason.ICE_FAILED]
    found: list[Reason] = []
    if not m.video_offered:
        found.append(Reason.NO_VIDEO)
    elif m.first_video_s is None or m.video_frames == 0:
        found.append(Reason.NO_VIDEO_FRAMES)
    else:
        if m.black_share is not None and m.black_share > BLACK_FRAME_SHARE_FAIL:
            found.append(Reason.BLACK_VIDEO)
        if m.fps is not None and m.fps < FPS_FAIL:
            found.append(Reason.LOW_FPS)
    if not m.audio_offered:
        found.append(Reason.NO_AUDIO)
    elif m.first_audio_s is None or m.audio_frames == 0:
        found.append(Reason.NO_AUDIO_FRAMES)
    elif m.audio_all_zero:
        found.append(Reason.MUTED)
    elif m.audio_max_dbfs is not None and m.audio_max_dbfs < SILENT_DBFS:
        found.append(Reason.SILENT)
    loss = m.packet_loss
    if loss is not None and loss >= PACKET_LOSS_FAIL:
        found.append(Reason.PACKET_LOSS)
    return found


def warnings_for(m: Measurements) -> list[WarningCode]:
    """The warnings, in a stable order; none once the check could not measure media."""
    if m.timed_out or not m.connected:
        return []
    found: list[WarningCode] = []
    loss = m.packet_loss
    if loss is not None and PACKET_LOSS_WARN <= loss < PACKET_LOSS_FAIL:
        found.append(WarningCode.SOME_PACKET_LOSS)
    jitter = m.jitter_ms
    if jitter is not None and jitter > JITTER_WARN_MS:
        found.append(WarningCode.HIGH_JITTER)
    if m.rtt_ms is not None and m.rtt_ms >= RTT_WARN_MS:
        found.append(WarningCode.HIGH_RTT)
    if m.video_kbps is not None and m.video_frames > 0 and m.video_kbps < VIDEO_KBPS_WARN:
        found.append(WarningCode.LOW_BITRATE)
    if m.fps is not None and FPS_FAIL <= m.fps < FPS_WARN:
        found.append(WarningCode.LOW_FRAME_RATE)
    if m.frozen_share is not None and m.frozen_share > FROZEN_FRAME_SHARE_WARN:
        found.append(WarningCode.FROZEN_VIDEO)
    return found


def decide(m: Measurements, elapsed: float) -> CheckResult:
    """Judge the measurements: the full :class:`CheckResult` with figures."""
    reasons = reasons_for(m)
    return CheckResult(
        verdict=Outcome.FAILED if reasons else Outcome.PASSED,
        reasons=tuple(finding(r) for r in reasons),
        warnings=tuple(finding(w) for w in warnings_for(m)),
        figures=m.figures(),
        elapsed=elapsed,
    )


def failure(
    reason: Reason, elapsed: float, figures: dict[str, Figure] | None = None
) -> CheckResult:
    """A failed result with one reason (worker failure, cancellation), outside :func:`decide`."""
    return CheckResult(
        verdict=Outcome.FAILED,
        reasons=(finding(reason),),
        figures=figures or {},
        elapsed=elapsed,
    )
