"""Every verdict rule at and around its threshold (pure, no aiortc)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mediacheck import verdict as v
from mediacheck.result import CheckResult
from mediacheck.verdict import Measurements, Reason, WarningCode, decide

EPS = 1e-6


def good(**changes: object) -> Measurements:
    """A healthy check: every figure comfortably inside its bounds."""
    base = Measurements(
        connected=True,
        video_offered=True,
        audio_offered=True,
        ice_connected_s=0.2,
        first_video_s=0.5,
        first_audio_s=0.4,
        video_frames=120,
        audio_frames=200,
        fps=30.0,
        width=640,
        height=480,
        black_share=0.0,
        frozen_share=0.0,
        audio_all_zero=False,
        audio_max_dbfs=-25.0,
        video_loss=0.0,
        audio_loss=0.0,
        video_jitter_ms=5.0,
        audio_jitter_ms=3.0,
        rtt_ms=40.0,
        video_kbps=800.0,
        bitrate_kbps=900.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def reasons(m: Measurements) -> list[str]:
    return [f.code for f in decide(m, 1.0).reasons]


def warnings(m: Measurements) -> list[str]:
    return [f.code for f in decide(m, 1.0).warnings]


def test_healthy_check_passes_without_warnings() -> None:
    result = decide(good(), 4.2)
    assert result.verdict == "passed"
    assert result.reasons == () and result.warnings == ()
    assert result.figures["resolution"] == "640x480"
    assert result.elapsed == 4.2


def test_result_is_json_and_round_trips() -> None:
    result = decide(good(black_share=0.9, rtt_ms=400.0, fps=float("nan")), 3.0)
    data = result.to_dict()
    text = json.dumps(data, allow_nan=False)  # no enum members, no NaN
    assert json.loads(text)["reasons"][0] == {
        "code": "black_video",
        "message": v.MESSAGES[Reason.BLACK_VIDEO],
    }
    assert CheckResult.from_dict(json.loads(text)) == CheckResult.from_dict(data)


def test_every_code_has_a_patient_message() -> None:
    for code in [*Reason, *WarningCode]:
        assert v.MESSAGES[code].strip()
    assert "uncover" in v.MESSAGES[Reason.BLACK_VIDEO]


def test_never_connected_is_ice_failed_and_nothing_else() -> None:
    m = good(connected=False, video_frames=0, audio_frames=0, rtt_ms=900.0)
    assert reasons(m) == ["ice_failed"]
    assert warnings(m) == []


def test_hard_cap_is_timeout_only() -> None:
    assert reasons(good(timed_out=True, black_share=1.0)) == ["timeout"]
    assert reasons(good(timed_out=True, connected=False)) == ["timeout"]


def test_missing_tracks() -> None:
    assert reasons(good(video_offered=False, video_frames=0, first_video_s=None)) == ["no_video"]
    assert reasons(good(audio_offered=False, audio_frames=0, first_audio_s=None)) == ["no_audio"]
    assert reasons(good(video_offered=False, audio_offered=False)) == ["no_video", "no_audio"]


def test_no_frames_within_the_first_frame_budget() -> None:
    assert reasons(good(first_video_s=None, video_frames=0, fps=None)) == ["no_video_frames"]
    assert reasons(good(first_audio_s=None, audio_frames=0)) == ["no_audio_frames"]


@pytest.mark.parametrize(
    ("share", "fails"),
    [(0.0, False), (1 / 3 - EPS, False), (1 / 3, False), (1 / 3 + EPS, True), (1.0, True)],
)
def test_black_video_above_a_third(share: float, fails: bool) -> None:
    assert ("black_video" in reasons(good(black_share=share))) is fails


@pytest.mark.parametrize(
    ("fps", "reason", "warning"),
    [
        (4.9, True, False),
        (5.0, False, True),
        (14.9, False, True),
        (15.0, False, False),
        (30.0, False, False),
    ],
)
def test_frame_rate(fps: float, reason: bool, warning: bool) -> None:
    m = good(fps=fps)
    assert ("low_fps" in reasons(m)) is reason
    assert ("low_frame_rate" in warnings(m)) is warning


def test_all_zero_audio_is_muted_not_silent() -> None:
    m = good(audio_all_zero=True, audio_max_dbfs=-120.0)
    assert reasons(m) == ["muted"]


@pytest.mark.parametrize(
    ("dbfs", "fails"), [(-60.1, True), (-60.0, False), (-59.9, False), (-70.0, True)]
)
def test_silent_below_minus_60_dbfs(dbfs: float, fails: bool) -> None:
    assert (reasons(good(audio_max_dbfs=dbfs)) == ["silent"]) is fails


@pytest.mark.parametrize(
    ("loss", "reason", "warning"),
    [
        (0.0, False, False),
        (0.0499, False, False),
        (0.05, False, True),
        (0.0999, False, True),
        (0.10, True, False),
        (0.5, True, False),
    ],
)
def test_packet_loss(loss: float, reason: bool, warning: bool) -> None:
    # The worse of audio and video loss counts.
    for m in (good(video_loss=loss), good(audio_loss=loss)):
        assert ("packet_loss" in reasons(m)) is reason
        assert ("some_packet_loss" in warnings(m)) is warning


@pytest.mark.parametrize(("jitter", "warns"), [(29.9, False), (30.0, False), (30.1, True)])
def test_jitter_above_30_ms(jitter: float, warns: bool) -> None:
    assert ("high_jitter" in warnings(good(audio_jitter_ms=jitter))) is warns
    assert ("high_jitter" in warnings(good(video_jitter_ms=jitter))) is warns


@pytest.mark.parametrize(
    ("rtt", "warns"), [(None, False), (299.9, False), (300.0, True), (600.0, True), (900.0, True)]
)
def test_round_trip_time_warns_from_300_ms(rtt: float | None, warns: bool) -> None:
    m = good(rtt_ms=rtt)
    assert ("high_rtt" in warnings(m)) is warns
    assert decide(m, 1.0).verdict == "passed"  # RTT alone never fails a check


@pytest.mark.parametrize(
    ("kbps", "warns"), [(None, False), (149.9, True), (150.0, False), (2000.0, False)]
)
def test_video_bitrate_below_150_kbps(kbps: float | None, warns: bool) -> None:
    assert ("low_bitrate" in warnings(good(video_kbps=kbps))) is warns


@pytest.mark.parametrize(
    ("share", "warns"), [(0.0, False), (1 / 3, False), (1 / 3 + EPS, True), (1.0, True)]
)
def test_frozen_frames(share: float, warns: bool) -> None:
    m = good(frozen_share=share)
    assert ("frozen_video" in warnings(m)) is warns
    assert decide(m, 1.0).verdict == "passed"


def test_findings_keep_a_stable_order() -> None:
    m = good(black_share=1.0, fps=2.0, audio_max_dbfs=-80.0, video_loss=0.2)
    assert reasons(m) == ["black_video", "low_fps", "silent", "packet_loss"]


def test_a_result_cannot_contradict_itself() -> None:
    with pytest.raises(ValueError):
        CheckResult(verdict="failed")
    with pytest.raises(ValueError):
        CheckResult(verdict="passed", reasons=(v.finding(Reason.SILENT),))
    with pytest.raises(ValueError):
        CheckResult(verdict="maybe")
