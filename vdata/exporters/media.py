"""Which video file each exported sample points at, and getting it into the export folder.

Per sample the *visual* is chosen once:
- a sample without a clip, whose clip spans the whole video, or generated at `scope: video`
  (`sample_scope` = video: its row is the synthetic whole-video row) shows the source video;
- a clip with a `clip_path` file on disk shows that file;
- otherwise the clip is either cut with ffmpeg into `videos/clips/<clip_id>.mp4` (strategy "cut":
  every format whose record cannot name an interval), or the source video is referenced together with
  the clip interval (strategy "interval": InternVL's `clip: [start, end]`).
Time texts are rendered relative to the start of the visual (see `timefmt`).

`--media` decides how existing files reach the export: `copy`, `link` (symlinks, the default: no
duplicated bytes) or `none` (records point at the files where they are, by absolute path). Cut clips
exist nowhere else, so they are always written into the export, by `vdata.media.clip_cut` (which checks
each file holds its clip). A clip that cannot be cut leaves its samples out of the export: counted as
`cut_failed` in the export's result and listed, with the reason, in `<folder>/not_cut.jsonl`.
"""
from __future__ import annotations

import os
import shutil
from bisect import bisect_left
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from vdata.media import MediaError
from vdata.media import storage as S
from vdata.media.clip_cut import cut_clip, holds_clip
from vdata.schemas import records as R

from .source import Item
from .timefmt import TimeFormat

MEDIA_MODES = ("copy", "link", "none")
# which cut clips an export could not write and why (next to the clips, so it travels with the media)
NOT_CUT_FILE = "not_cut.jsonl"
# local copies of a bucket's videos that are cut (ffmpeg reads no s3:// or hf://), removed when placed
SOURCE_COPIES = ".vdata-sources"
CLIP_STRATEGIES = ("cut", "interval")


class MediaStats(dict):
    """An export's media counts (copied, linked, cut, referenced, existing, failed), as `ExportResult.media`
    reports them, and for the stale-file sweep (`vdata.exporters._forget_stale_files`): `files`, the media
    this export placed (paths relative to its folder), and `folder`, the media folder the planner manages.
    Attributes, not keys: the counts stay what a summary prints."""

    def __init__(self, counts=(), files: list[str] | None = None, folder: str | None = None):   # None: unknown
        super().__init__(counts)
        self.files = files
        self.folder = folder


class MediaMissing(Exception):
    """A sample whose video cannot be found: the sample is skipped with this reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Visual:
    key: str                         # identity of the file in the export (dedupes placements)
    source: str                      # existing file to place, or the source of a cut
    rel: str | None                  # path inside the export (None: referenced where it lies)
    origin_s: float                  # video-absolute time of the visual's first frame
    duration_s: float | None
    fps: float | None
    interval: tuple[float, float] | None = None   # source-relative clip interval (strategy "interval")
    cut: tuple[float, float] | None = None        # (start, end) to cut from `source`
    video_id: str | None = None
    vfr: bool = False                # variable frame rate (row `is_vfr`): `frames` needs the real frame times
    video_path: str | None = None    # the source video (its frame times number a clip's frames too)

    def timefmt(self, mode: str, frame_times=None) -> TimeFormat:
        return TimeFormat(mode, self.origin_s, self.duration_s, self.fps, frame_times)

    def loader_interval(self) -> list[float] | None:
        """The clip interval as written for loaders that turn seconds into frames themselves, or None.
        InternVL-family `int(start * fps)` floors: an exact cut time floors onto the frame before (17.24 s
        at 25 fps is 430.99999), a millisecond rounding down too (9.5095 -> 9.509 s, frame 284 of 29.97).
        A quarter frame inside each end lands floor and round on the clip's first frame and, at the end,
        floor on its last frame (round, which MVBench-style loaders read as an exclusive end, on the
        next): both stay clear of the neighbouring shots. Without a rate the interval is written as is."""
        if self.interval is None:
            return None
        a, b = self.interval
        if self.fps and self.fps > 0 and b - a > 0.5 / self.fps:
            a, b = a + 0.25 / self.fps, b - 0.25 / self.fps
        return [round(a, 3), round(b, 3)]

    @property
    def stem(self) -> str:
        return os.path.splitext(os.path.basename(self.rel or self.source))[0]


class MediaPlanner:
    """Chooses each item's visual, then copies / links / cuts every file once (`materialize`)."""

    def __init__(self, dest: str, mode: str = "link", clip_strategy: str = "cut", folder: str = "videos",
                 flat: bool = False, force_mp4: bool = False, bucket: bool = False,
                 names: dict[str, str] | None = None):
        if mode not in MEDIA_MODES:
            raise ValueError(f"media mode must be one of {', '.join(MEDIA_MODES)}, not {mode!r}")
        if clip_strategy not in CLIP_STRATEGIES:
            raise ValueError(f"clip strategy must be one of {', '.join(CLIP_STRATEGIES)}, not {clip_strategy!r}")
        self.dest = os.path.abspath(dest)
        self.mode = mode
        self.clip_strategy = clip_strategy
        self.folder = folder
        self.flat = flat              # VLMEvalKit: every file directly under <folder>/<stem>.mp4
        self.force_mp4 = force_mp4    # VLMEvalKit expects .mp4: other containers are remuxed/re-encoded
        # Hub repos want < 10k files per folder: bucket by the first two characters of the (hex) id.
        self.bucket = bucket
        # a source video's file name in the export: its dataset's own (BuildDir.dataset_names), else its id
        self.names = names or {}
        self.pending: dict[str, Visual] = {}
        self._exists: dict[str, bool] = {}
        self._frame_times: dict[str, object] = {}   # per file: its frames' times, or why there are none
        self._visual_times: dict[str, object] = {}  # per visual: its frames' times, or the MediaMissing
        self.vfr_videos: set = set()   # ids of variable-rate videos (set by `prepare` for `frames`)
        self.stats: dict = {}

    def timefmt(self, v: Visual, mode: str) -> TimeFormat:
        """The visual's time format. `frames` on a variable-rate video counts its real frames (their times
        read by a demux, once per file); raises MediaMissing (`no_frame_times`) where they cannot be read,
        rather than numbering frames by the average rate, which names other frames."""
        if not (v.vfr and mode.partition(":")[0] == "frames"):
            return v.timefmt(mode)
        if v.key not in self._visual_times:   # a visual's samples share its frames
            self._visual_times[v.key] = self._visual_frame_times(v)
        times = self._visual_times[v.key]
        if isinstance(times, MediaMissing):
            raise times
        return v.timefmt(mode, times)

    def _visual_frame_times(self, v: Visual) -> list[float] | MediaMissing:
        end = v.origin_s + v.duration_s if v.duration_s else None
        eps = 1e-3   # as TimeFormat: a clip bound stored to the millisecond is its frame's time
        why = "no readable file"
        for path, own in ((v.video_path, False), (v.source, True)):
            if not path or (own and (v.cut is not None or v.interval is not None or path == v.video_path)):
                continue
            times = self._file_frame_times(path)
            if isinstance(times, str):
                why = times
                continue
            if own:   # a clip file: its own frames, from its first
                return [t - times[0] for t in times]
            first = bisect_left(times, v.origin_s - eps)
            last = bisect_left(times, end - eps) if end is not None else len(times)
            sel = [t - v.origin_s for t in times[first:last]]
            if sel:
                return sel
            why = f"no frame of {path} in {v.origin_s:.3f}-{end} s"
        return MediaMissing("no_frame_times", f"{v.key}: variable frame rate, and its frame times cannot be "
                                             f"read ({why}): frame numbers by the average rate would be wrong")

    def _file_frame_times(self, path: str):
        if path not in self._frame_times:
            from vdata.media.timestamps import shown_times   # deferred: PyAV, only for `frames` on VFR video

            if S.is_remote(path):
                self._frame_times[path] = f"{path} is remote (frame times are read from local files only)"
            elif not os.path.isfile(path):
                self._frame_times[path] = f"{path} does not exist"
            else:
                got = shown_times(path)
                self._frame_times[path] = [float(t) for t in got[0]] if got else f"PyAV cannot read {path}"
        return self._frame_times[path]

    def _isfile(self, p: str | None) -> bool:
        """Whether the file is there: a local path, or an object of a bucket (a build of s3:// inputs)."""
        if not p:
            return False
        if p not in self._exists:
            try:
                self._exists[p] = S.isfile(p) if S.is_remote(p) else os.path.isfile(p)
            except (S.StorageError, OSError):
                self._exists[p] = False
        return self._exists[p]

    def _rel(self, kind: str, name: str, ext: str, spread_by: str | None = None) -> str:
        if self.force_mp4:
            ext = ".mp4"
        sub = "" if self.flat or kind == "video" else "clips/"
        if self.bucket:   # by the (hex) content id: a dataset's names share prefixes (ActivityNet's v_)
            sub += f"{(spread_by or name)[:2]}/"
        return f"{self.folder}/{sub}{name}{ext}"

    def visual(self, item: Item) -> Visual:
        row = item.row
        src = row.get(R.PATH)
        vid = row.get(R.VIDEO_ID) or (os.path.splitext(os.path.basename(src))[0] if src else None)
        name = self.names.get(vid, vid)   # what the records call the source video (lmms-eval's videoID)
        fps = row.get(R.FPS)
        more = {"video_id": name, "vfr": bool(row.get(R.IS_VFR)) or vid in self.vfr_videos, "video_path": src}
        start, end = row.get(R.START_S), row.get(R.END_S)
        vdur = row.get(R.DURATION_S)
        clip_id = row.get(R.CLIP_ID)
        if shows_clip(row):
            clip_path = row.get(R.CLIP_PATH)
            dur = float(end) - float(start)
            if self._isfile(clip_path):
                ext = os.path.splitext(clip_path)[1] or ".mp4"
                return self._add(Visual(f"clip:{clip_id}", clip_path, self._placed_rel("clip", clip_id, ext, clip_path),
                                        float(start), dur, fps, **more))
            if not self._isfile(src):
                raise MediaMissing("missing_media", f"clip {clip_id}: neither clip_path {clip_path!r} nor source {src!r} exists")
            if self.clip_strategy == "interval":
                ext = os.path.splitext(src)[1] or ".mp4"
                # one Visual per clip (its own interval and time origin), one file per source video
                placed = self._placed_rel("video", name, ext, src, vid)
                return self._add(Visual(f"video:{vid}@{clip_id}", src, placed,
                                        float(start), dur, fps, interval=(float(start), float(end)), **more))
            return self._add(Visual(f"clip:{clip_id}", src, self._rel("clip", clip_id, ".mp4"), float(start), dur, fps,
                                    cut=(float(start), float(end)), **more))
        if not self._isfile(src):
            raise MediaMissing("missing_media", f"sample {row.get(R.SAMPLE_ID)}: source video {src!r} does not exist")
        ext = os.path.splitext(src)[1] or ".mp4"
        if not vdur and row.get(R.SAMPLE_SCOPE) == R.SCOPE_VIDEO and end:
            vdur = float(end)   # the video row's interval is the whole video
        placed = self._placed_rel("video", name, ext, src, vid)
        return self._add(Visual(f"video:{vid}", src, placed, 0.0, vdur, fps, **more))

    def _placed_rel(self, kind: str, name: str, ext: str, path: str, spread_by: str | None = None) -> str | None:
        # With --media none, existing files stay where they are (unless the format needs an mp4 copy).
        if self.mode == "none" and not (self.force_mp4 and ext.lower() != ".mp4"):
            return None
        return self._rel(kind, name, ext, spread_by)

    def _add(self, v: Visual) -> Visual:
        self.pending.setdefault(v.key, v)
        return self.pending[v.key]

    def ref(self, v: Visual, base: str | None = None) -> str:
        """The path to write in a record: relative to `base` (a folder inside the export), or absolute."""
        if v.rel is None:
            return _where(v.source)
        target = os.path.join(self.dest, v.rel)
        return os.path.relpath(target, base) if base is not None else target

    def abspath(self, v: Visual) -> str:
        return _where(v.source) if v.rel is None else os.path.join(self.dest, v.rel)

    def materialize(self, workers: int | None = None) -> dict:
        """Place every chosen file once. Returns counts; a failed cut is reported (in `failed`, and in
        NOT_CUT_FILE under the media folder), not raised."""
        stats = {"copied": 0, "linked": 0, "cut": 0, "referenced": 0, "existing": 0, "failed": {}}
        cuts, seen = [], set()
        for v in self.pending.values():
            if v.rel is None:
                stats["referenced"] += 1
                continue
            if v.rel in seen:
                continue
            seen.add(v.rel)
            target = os.path.join(self.dest, v.rel)
            if self.mode == "copy" and v.cut is None and os.path.islink(target):
                os.remove(target)   # an earlier linked export here: `copy` promises files that travel without the sources
            # a re-export into the same folder reuses what is there; a cut only where it holds its clip
            # (an older vdata left clips without video, or off by a shot)
            if os.path.exists(target) and (v.cut is None or (not S.is_remote(v.source) and holds_clip(
                    target, v.source, v.cut[0], v.cut[1] - v.cut[0]))):
                stats["existing"] += 1
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if v.cut is not None or (self.force_mp4 and not v.source.lower().endswith(".mp4")):
                cuts.append((v, target))
            elif S.is_remote(v.source):   # a bucket's video: downloaded (nothing to link to)
                S.get_file(v.source, target)
                stats["copied"] += 1
            elif self.mode == "copy":
                shutil.copy2(v.source, target)
                stats["copied"] += 1
            else:
                try:
                    os.symlink(os.path.abspath(v.source), target)
                    stats["linked"] += 1
                except OSError:   # filesystems without symlinks
                    shutil.copy2(v.source, target)
                    stats["copied"] += 1
        failed = []
        if cuts:
            workers = workers or max(1, min(4, os.cpu_count() or 1))
            copies = os.path.join(self.dest, SOURCE_COPIES)
            with ThreadPoolExecutor(workers) as pool:
                # a bucket's video is fetched once, however many of its clips are cut
                remote = sorted({v.source for v, _ in cuts if S.is_remote(v.source)})
                local = dict(zip(remote, pool.map(lambda url: _fetch(url, copies), remote)))
                cut = lambda vt: _encode(*vt, local.get(vt[0].source, vt[0].source))  # noqa: E731
                for (v, target), err in zip(cuts, pool.map(cut, cuts)):
                    if err:
                        stats["failed"][v.key] = err
                        failed.append((v, err))
                    else:
                        stats["cut"] += 1
            shutil.rmtree(copies, ignore_errors=True)
        _note_failures(self.dest, self.folder, failed)
        placed = sorted({v.rel for v in self.pending.values() if v.rel is not None and v.key not in stats["failed"]})
        self.stats = MediaStats(stats, placed, self.folder)
        return self.stats


def shows_clip(row: dict) -> bool:
    """Whether an export shows the row's clip (times in its texts count from the clip's start) rather than
    its whole source video (a video-scope sample, or a clip that is the whole video)."""
    start, end = row.get(R.START_S), row.get(R.END_S)
    return (row.get(R.CLIP_ID) is not None and start is not None and end is not None
            and row.get(R.SAMPLE_SCOPE) != R.SCOPE_VIDEO
            and not _covers(start, end, row.get(R.DURATION_S), row.get(R.FPS)))


def _covers(start, end, duration, fps) -> bool:
    """A clip that is the whole video needs no cut: the source file is the clip."""
    if duration is None:
        return False
    tol = max(0.05, 1.5 / fps) if fps else 0.05
    return float(start) <= tol and float(end) >= float(duration) - tol


def _where(source: str) -> str:
    """A source as a record names it where it lies: a bucket's URL as it is, a local file absolute."""
    return source if S.is_remote(source) else os.path.abspath(source)


def _fetch(url: str, copies: str) -> str | Exception:
    """A local copy of a bucket's video under `copies` (ffmpeg reads no s3:// or hf://), or why there is none."""
    try:
        return S.local_copy(url, copies)
    except (S.StorageError, OSError) as e:
        return e


def _encode(v: Visual, target: str, source: str | Exception) -> str | None:
    """Cut (or convert to mp4) `source` (the file of `v.source`, or why it could not be fetched) with
    `clip_cut`, which checks what it wrote: accurate cuts need a re-encode. Returns an error or None."""
    if isinstance(source, Exception):
        return f"source_unreadable: {v.source}: {source}"
    tmp = target + ".part.mp4"
    try:
        if v.cut is not None:
            a, b = v.cut
            cut_clip(source, a, b - a, tmp, crf=20, faststart=True)
        else:
            cut_clip(source, 0.0, None, tmp, crf=20, faststart=True)
        os.replace(tmp, target)
        return None
    except MediaError as e:
        for left in (tmp, target):   # the target: a clip an earlier export cut wrong
            if os.path.lexists(left):
                os.remove(left)
        return f"{e.reason}: {e.message}"


def _note_failures(dest: str, folder: str, failed: list[tuple[Visual, str]]) -> None:
    """A lasting record of the visuals that could not be cut (their samples are left out of the export and
    counted as `cut_failed`): NOT_CUT_FILE in the media folder, one JSON line per visual; removed by an
    export without failures."""
    import json

    path = os.path.join(dest, folder, NOT_CUT_FILE)
    if not failed:
        if os.path.isfile(path):
            os.remove(path)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for v, err in failed:
            start, end = v.cut if v.cut is not None else (None, None)
            f.write(json.dumps({"visual": v.key, "source": v.source, "start_s": start, "end_s": end,
                                "error": err}, ensure_ascii=False) + "\n")
