"""Per-frame measurements of received video and audio, cheap enough to run on every frame.

No numpy here (it is not a dependency): video is judged on a sparse grid of luma
samples (about 64 x 48 points whatever the resolution), audio with the stdlib
``array`` module. Both analysers take PyAV frames as aiortc decodes them (planar YUV video,
packed s16 audio), keep running totals only and store no media.
"""

from __future__ import annotations

import math
import operator
import sys
from array import array
from dataclasses import dataclass

from av import AudioFrame, VideoFrame

from mediacheck.verdict import BLACK_LUMA_MAX, BLACK_PEAK_LUMA_MAX

#: Luma samples across / down a frame: ~3,000 points cost ~0.3 ms per frame in pure
#: Python and still see a covered lens or a frozen picture reliably.
GRID_COLUMNS = 64
GRID_ROWS = 48
#: Two consecutive frames whose sampled luma differs by less than this on average
#: (0-255 scale) count as frozen. testrtc compares frames by SSIM (> 0.985 = identical);
#: a mean absolute difference under half a level is the numpy-free equivalent: a still
#: person breathing and blinking, or sensor noise, moves it well above that.
FROZEN_MAX_MEAN_DIFF = 0.5
#: Full scale of signed 16-bit PCM, the format aiortc decodes Opus to.
S16_FULL_SCALE = 32768.0
#: RMS of an all-zero frame, in dBFS: reported instead of minus infinity.
DBFS_FLOOR = -120.0


def luma_grid(frame: VideoFrame) -> bytes:
    """A sparse grid of Y-plane samples (the frame must be planar YUV, as aiortc decodes).

    Rows and columns are spread evenly; row padding (``line_size`` > width) is skipped.
    """
    plane = frame.planes[0]
    data = bytes(plane)
    stride = plane.line_size
    width, height = frame.width, frame.height
    col_step = max(1, width // GRID_COLUMNS)
    row_step = max(1, height // GRID_ROWS)
    rows = [data[y * stride : y * stride + width : col_step] for y in range(0, height, row_step)]
    return b"".join(rows)


def mean_abs_diff(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two equally long sample grids (inf if they differ)."""
    if len(a) != len(b) or not a:
        return math.inf
    if a == b:
        return 0.0
    total: int = sum(map(abs, map(operator.sub, a, b)))
    return total / len(a)


@dataclass
class VideoStats:
    """Running totals of received video; ``frames`` counts every frame analysed."""

    frames: int = 0
    black_frames: int = 0
    frozen_frames: int = 0
    width: int = 0
    height: int = 0

    @property
    def black_share(self) -> float | None:
        return self.black_frames / self.frames if self.frames else None

    @property
    def frozen_share(self) -> float | None:
        # The first frame has nothing to be frozen against.
        return self.frozen_frames / (self.frames - 1) if self.frames > 1 else None


class VideoAnalyser:
    """Counts black and frozen frames and remembers the latest resolution."""

    def __init__(self) -> None:
        self.stats = VideoStats()
        self._previous: bytes | None = None

    def add(self, frame: VideoFrame) -> None:
        grid = luma_grid(frame)
        stats = self.stats
        stats.frames += 1
        stats.width, stats.height = frame.width, frame.height
        if grid and sum(grid) / len(grid) < BLACK_LUMA_MAX and max(grid) <= BLACK_PEAK_LUMA_MAX:
            stats.black_frames += 1
        if self._previous is not None and (
            mean_abs_diff(grid, self._previous) < FROZEN_MAX_MEAN_DIFF
        ):
            stats.frozen_frames += 1
        self._previous = grid


@dataclass
class AudioStats:
    """Running totals of received audio: loudest 20 ms frame, and whether any sample was not 0."""

    frames: int = 0
    max_rms: float = 0.0
    nonzero: bool = False

    @property
    def all_zero(self) -> bool | None:
        return None if not self.frames else not self.nonzero

    @property
    def max_dbfs(self) -> float | None:
        return None if not self.frames else to_dbfs(self.max_rms)


def to_dbfs(rms: float) -> float:
    """RMS of s16 samples in dB relative to full scale (floored at :data:`DBFS_FLOOR`)."""
    if rms <= 0:
        return DBFS_FLOOR
    return max(DBFS_FLOOR, 20 * math.log10(rms / S16_FULL_SCALE))


def pcm_rms(samples: array[int]) -> float:
    """Root mean square of signed 16-bit samples."""
    if not samples:
        return 0.0
    return math.sqrt(sum(map(operator.mul, samples, samples)) / len(samples))


class AudioAnalyser:
    """Measures the loudest 20 ms frame (aiortc delivers Opus as 20 ms s16 frames)."""

    def __init__(self) -> None:
        self.stats = AudioStats()

    def add(self, frame: AudioFrame) -> None:
        # The decoder's plane buffer can be larger than the frame (aiortc's Opus decoder
        # allocates 120 ms): only the first samples x channels values are audio.
        used = frame.samples * len(frame.layout.channels) * 2
        samples = array("h")
        samples.frombytes(bytes(frame.planes[0])[:used])
        if sys.byteorder != "little":  # pragma: no cover - PyAV hands native-endian s16
            samples.byteswap()
        stats = self.stats
        stats.frames += 1
        if not stats.nonzero and any(samples):
            stats.nonzero = True
        stats.max_rms = max(stats.max_rms, pcm_rms(samples))
