"""probe: content id + container/stream facts for each video; unreadable media become rejects."""
from __future__ import annotations

from pydantic import Field

from vdata.media.hashing import content_id
from vdata.media.probe import probe_video
from vdata.schemas import records as R

from .base import Resources, Stage, StageConfig


class ProbeConfig(StageConfig):
    min_frames: int = Field(2, ge=1, description="videos with fewer frames are rejected")
    min_duration_s: float = Field(0.0, ge=0)
    max_duration_s: float | None = Field(None, gt=0)


class ProbeStage(Stage):
    name = "probe"
    version = 6   # 2: presentation times where decode times precede them (VFR with B-frames); 3: timelines joined,
                  # and an edit list's pre-roll (a copy cut with `ffmpeg -ss`) is not counted; 4: a DV tape's
                  # frame rate (its demuxer's average is its 1/60000 clock); 5: a variable-rate video's fps is its
                  # average and its duration ends with its last picture; a mirrored display matrix is no half turn;
                  # 6: an MP4 whose last box runs past its end is `truncated`, not `undecodable`
    Config = ProbeConfig
    reads = (R.PATH,)
    writes = R.PROBE_COLUMNS
    default_resources = Resources(num_cpus=1, batch_size=1)
    cache_results = True

    def process_row(self, row):
        path = row[R.PATH]
        # audio-only inputs pass (has_video: False); the first stage that needs video rejects them
        info = probe_video(path, min_frames=self.config.min_frames, allow_audio_only=True)
        cfg = self.config
        if info["duration_s"] < cfg.min_duration_s:
            return self.reject(row, "too_short", f"video is {info['duration_s']:.2f}s < min_duration_s {cfg.min_duration_s}",
                               duration_s=info["duration_s"])
        if cfg.max_duration_s and info["duration_s"] > cfg.max_duration_s:
            return self.reject(row, "too_long", f"video is {info['duration_s']:.1f}s > max_duration_s {cfg.max_duration_s}",
                               duration_s=info["duration_s"])
        return {**row, R.VIDEO_ID: content_id(path), R.HAS_VIDEO: True, **info}
