"""Frame measurements, offer reading and the worker channel: fast, no peers."""

from __future__ import annotations

import asyncio
import math
from array import array

import pytest
from av import AudioFrame, VideoFrame

from mediacheck.analysis import AudioAnalyser, VideoAnalyser, luma_grid, to_dbfs
from mediacheck.channel import ChannelClosed, encode, read_message
from mediacheck.offer import OfferRejected, ice_configuration, summarise_offer


def video_frame(fill: bytes | int, width: int = 320, height: int = 240) -> VideoFrame:
    frame = VideoFrame(width=width, height=height)
    luma = frame.planes[0]
    if isinstance(fill, int):
        luma.update(bytes([fill]) * luma.buffer_size)
    else:
        luma.update((fill * (luma.buffer_size // len(fill) + 1))[: luma.buffer_size])
    for chroma in frame.planes[1:]:
        chroma.update(bytes([128]) * chroma.buffer_size)
    return frame


def audio_frame(samples: list[int], layout: str = "mono") -> AudioFrame:
    channels = 2 if layout == "stereo" else 1
    frame = AudioFrame(format="s16", layout=layout, samples=len(samples) // channels)
    frame.planes[0].update(array("h", samples).tobytes())
    frame.sample_rate = 48_000
    return frame


def test_black_frames_are_counted() -> None:
    analyser = VideoAnalyser()
    for fill in (16, 19, 21, 128):
        analyser.add(video_frame(fill))
    assert analyser.stats.frames == 4
    assert analyser.stats.black_frames == 2  # mean luma 16 and 19 are below 20
    assert (analyser.stats.width, analyser.stats.height) == (320, 240)


def test_a_dim_frame_with_a_bright_object_is_not_black() -> None:
    # Chromium's fake camera: mostly dark (mean luma ~7-41) with a bright shape moving.
    width, height = 320, 240
    dark = bytearray([8]) * (width * height)
    for y in range(100, 140):  # a bright 40x40 square
        dark[y * width + 140 : y * width + 180] = bytes([235]) * 40
    frame = VideoFrame(width=width, height=height)
    luma = frame.planes[0]
    rows = [
        bytes(dark[y * width : (y + 1) * width]) + bytes(luma.line_size - width)
        for y in range(height)
    ]
    luma.update(b"".join(rows)[: luma.buffer_size])
    assert sum(luma_grid(frame)) / len(luma_grid(frame)) < 20  # dim on average...
    analyser = VideoAnalyser()
    analyser.add(frame)
    assert analyser.stats.black_frames == 0  # ...but not a covered lens
    analyser.add(video_frame(40))  # uniformly dark grey: not black either (mean >= 20)
    analyser.add(video_frame(12))  # uniformly near-black: black
    assert analyser.stats.black_frames == 1


def test_identical_frames_count_as_frozen_and_changing_ones_do_not() -> None:
    pattern = bytes(range(256))
    frozen, moving = VideoAnalyser(), VideoAnalyser()
    for i in range(5):
        frozen.add(video_frame(pattern))
        moving.add(video_frame(pattern[i * 7 :] + pattern[: i * 7]))
    assert frozen.stats.frozen_share == 1.0
    assert moving.stats.frozen_share == 0.0
    assert VideoAnalyser().stats.frozen_share is None


def test_luma_grid_skips_row_padding() -> None:
    frame = video_frame(200, width=100, height=50)  # line_size is padded past 100
    assert frame.planes[0].line_size > 100
    grid = luma_grid(frame)
    assert grid and set(grid) == {200}


def test_tone_level_in_dbfs() -> None:
    amplitude = 32768 * 0.1 * math.sqrt(2)  # RMS 0.1 of full scale = -20 dBFS
    tone = [int(amplitude * math.sin(2 * math.pi * 440 * i / 48_000)) for i in range(960)]
    analyser = AudioAnalyser()
    analyser.add(audio_frame(tone))
    assert analyser.stats.max_dbfs == pytest.approx(-20.0, abs=0.2)
    assert analyser.stats.all_zero is False


def test_zero_audio_is_all_zero_and_faint_audio_is_not() -> None:
    muted, faint = AudioAnalyser(), AudioAnalyser()
    muted.add(audio_frame([0] * 1920, "stereo"))
    faint.add(audio_frame([10, -10] * 960, "stereo"))
    assert muted.stats.all_zero is True
    assert muted.stats.max_dbfs == -120.0
    assert faint.stats.all_zero is False
    assert faint.stats.max_dbfs == pytest.approx(to_dbfs(10), abs=0.01)
    assert faint.stats.max_dbfs < -60


def test_ice_servers_are_explicit_and_empty_by_default() -> None:
    # None would make aiortc fall back to a public STUN server.
    assert ice_configuration(()).iceServers == []
    turn = ice_configuration(
        ({"urls": ["turn:t.example:3478"], "username": "u", "credential": "c"},)
    )
    assert turn.iceServers is not None and turn.iceServers[0].username == "u"


OFFER = """v=0
o=- 1 1 IN IP4 0.0.0.0
s=-
t=0 0
a=group:BUNDLE 0 1
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=mid:0
a=sendonly
a=rtpmap:111 opus/48000/2
m=video 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 0.0.0.0
a=mid:1
a=sendrecv
a=rtpmap:96 VP8/90000
"""


def test_offer_summary_reads_directions() -> None:
    summary = summarise_offer(OFFER.replace("\n", "\r\n"))
    assert summary.audio and summary.video
    assert not summary.audio_sendrecv and summary.video_sendrecv
    recvonly = summarise_offer(OFFER.replace("a=sendonly", "a=recvonly").replace("\n", "\r\n"))
    assert not recvonly.audio
    with pytest.raises(OfferRejected):
        summarise_offer("v=0\r\n")
    with pytest.raises(OfferRejected) as bad:
        summarise_offer("v=0\r\nm=video notaport UDP 96\r\na=ice-pwd:secret\r\n")
    assert "secret" not in str(bad.value)


async def test_channel_frames_round_trip_and_eof() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(encode({"kind": "begin", "id": "c1", "sdp": "x" * 10_000}))
    reader.feed_data(encode({"kind": "stop"}))
    reader.feed_eof()
    assert (await read_message(reader))["sdp"] == "x" * 10_000
    assert (await read_message(reader)) == {"kind": "stop"}
    with pytest.raises(ChannelClosed):
        await read_message(reader)
