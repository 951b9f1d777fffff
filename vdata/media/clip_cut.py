"""Cutting one clip out of a video into an MP4 file that holds exactly the clip's frames: the one routine
behind the shots stage's clip files and the exports' cut clips.

A clip [start, end) counts from the video stream's first frame (as every reader of vdata does), while
ffmpeg's `-ss` counts from the container's start: where the audio starts before the video (broadcast
MPEG-TS, screen recordings, `-itsoffset`) the cut adds the video's start offset, so that the file holds
its shot and not a piece of the one before.

From one demux of the packets around the clip (no decoding) the cut knows the keyframe at or before the
start, the frames the clip must hold and how the stream is reordered. Then, first that works:

1. a stream copy, only where both ends are safe: the clip starts on a keyframe ffmpeg's seek lands on,
   and its N frames are the first N packets from there in decode order, so that the copy takes exactly
   N packets (a copy cut by time stops by decode times: B-frames shown before the end but decoded after
   a frame of the next shot carried that frame along). The copy's packets must be the source's, size
   for size, and its first frame must be shown at time 0, as an encode's is;
2. an H.264 encode that seeks to a point before that keyframe and drops the frames before the start
   after decoding (an accurate seek: a decoder started on a frame that is not a keyframe shows grey
   pictures, or nothing at all where MPEG-TS keyframes are far apart);
3. the same encode decoding from the very start of the file.

Every attempt gives the clip's last frame the time until the clip's end (`_hold_last`): MP4 keeps each
sample's duration, and a copy or an encode took the source's, which in a variable-rate video (a screen
recording's slide: one frame shown for seconds) is not how long the frame shows in the clip, nor, where
B-frames reorder them, even this frame's own (a 2.52 s slide written as a 0.12 s file). Every output is
checked: it holds a video stream with about the clip's number of frames and lasts the clip. Odd picture
sizes are padded to even ones (4:2:0 H.264 has no odd sizes). When nothing works, MediaError with
reason `clip_not_written` says why; a cut never succeeds with a file that is empty or off by a shot.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import NamedTuple

from . import MediaError
from .ffmpeg import run_ffmpeg
from .streams import video_stream

CLIP_NOT_WRITTEN = "clip_not_written"
# The comment every file this routine writes carries: a file without it was cut by an older vdata, which may
# have left it off by a shot, or with grey frames, at the right length (see `holds_clip`).
CUT_MARK = "vdata clip_cut 1"

# How far before a clip's start the packet read begins: a keyframe 3 s before is the common case; where
# none is found (long GOPs, an MPEG-TS seek that landed late) it begins further back, at last at the start.
LOOK_BACK_S = (3.0, 30.0, 300.0)
# How far past the end the packet read goes when the packets carry no decode times to stop by.
LOOK_AHEAD_S = 2.0


class Packet(NamedTuple):
    pts: float          # presentation time, seconds from the video stream's first frame
    dts: float | None   # decode time, same origin; None where the container stores none (Matroska)
    keyframe: bool
    size: int


@dataclass
class ClipSource:
    """What one opening of the source says about cutting [start, end) from it."""

    video_map: str                  # ffmpeg's `-map` for the video stream vdata reads
    offset_s: float                 # video stream start minus container start (where ffmpeg's -ss counts from)
    seeks_by_pts: bool              # the demuxer's seek lands on a keyframe by its presentation time
    odd_size: bool                  # width or height is odd: an H.264 4:2:0 encode needs padding
    keyframe: Packet | None = None  # the last keyframe shown at or before the start
    after_key: list[Packet] = field(default_factory=list)  # from that keyframe on, in decode order
    frames: int | None = None       # frames shown in [start, end); None where the packets do not say
    frame_gap_s: float = 0.04       # the shortest time between two frames near the clip
    reorder_s: float = 0.0          # how far decode times run ahead of presentation times
    time_base: str = ""             # the video stream's time base ("1/12800"): an encode keeps its frames' times

    def tolerance(self) -> float:
        """Slack for comparing frame times with clip bounds: well under a frame, over float rounding."""
        return min(1e-3, self.frame_gap_s / 4)


# libavformat's AVFMT_SEEK_TO_PTS (avformat.h): the demuxer seeks by presentation time (MP4 / MOV).
AVFMT_SEEK_TO_PTS = 0x4000000


def _seeks_by_pts(container) -> bool:
    """Whether ffmpeg's input `-ss` lands on the last keyframe shown at or before its target. MP4 seeks by
    presentation time; so do Matroska's cues, but where a stream has B-frames the ffmpeg command line
    seeks 3/23 s before the target of a demuxer that does not say so (its guess at how far decode times
    run ahead), a keyframe too early. Others seek by decode time (AVI's index, MPEG-TS's search), and may
    land on a frame that is no keyframe: there the seek goes before the keyframe's decode time and what
    decodes before the clip's start is dropped after decoding."""
    if container.format.flags & AVFMT_SEEK_TO_PTS:
        return True
    delayed = any(s.codec_context.has_b_frames for s in container.streams.video)
    return "matroska" in container.format.name.split(",") and not delayed


def clip_source(path: str, start_s: float, end_s: float | None) -> ClipSource:
    """Read the packets around [start_s, end_s) (only the whole-file facts where `end_s` is None)."""
    import av

    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise MediaError("unreadable", f"cannot open {os.path.basename(path)}: {e}")
    with container:
        stream = video_stream(container)
        if stream is None:
            raise MediaError("no_video_stream", f"{os.path.basename(path)} holds no video stream")
        base = float(stream.time_base)
        container_start = container.start_time / 1e6 if container.start_time is not None else 0.0
        origin = stream.start_time * base if stream.start_time is not None else container_start
        cc = stream.codec_context
        by_pts = _seeks_by_pts(container)
        odd = bool(cc.width % 2 or cc.height % 2) if cc.width and cc.height else True
        source = ClipSource(f"0:{stream.index}", origin - container_start, by_pts, odd,
                            time_base=f"{stream.time_base.numerator}/{stream.time_base.denominator}")
        if end_s is not None:
            _describe(source, *_packets_around(container, stream, base, origin, start_s, end_s), start_s, end_s)
    return source


def _packets_around(container, stream, base: float, origin: float, start_s: float,
                    end_s: float) -> tuple[list[Packet], bool]:
    """The video packets from a keyframe at or before `start_s` until decode times pass `end_s`, in
    decode order (read from the file's start where a seek finds no keyframe early enough), and whether
    the read got past the clip (no damage stopped it)."""
    import av

    from .streams import rewind

    packets: list[Packet] = []
    whole = False   # the read passed the clip's end, or the stream's: every frame of the clip was seen
    for look_from in [*(start_s - back for back in LOOK_BACK_S if back < start_s), None]:
        packets, whole = [], False
        try:
            if look_from is None:
                rewind(container)
            else:
                container.seek(int((origin + look_from) / base), stream=stream, backward=True, any_frame=False)
            for p in container.demux(stream):
                if not p.size or p.pts is None or p.is_discard:
                    continue   # a flush packet, or an edit list's pre-roll: no frame of the video
                dts = p.dts * base - origin if p.dts is not None else None
                packets.append(Packet(p.pts * base - origin, dts, bool(p.is_keyframe), p.size))
                if (dts if dts is not None else packets[-1].pts - LOOK_AHEAD_S) > end_s:
                    break
            whole = True
        except av.error.FFmpegError:
            pass   # a damaged tail: what came before it still counts
        if any(p.keyframe and p.pts <= start_s + 1e-3 for p in packets):
            break
    return packets, whole


def _describe(source: ClipSource, packets: list[Packet], whole: bool, start_s: float, end_s: float) -> None:
    shown = sorted(p.pts for p in packets)
    gaps = [b - a for a, b in zip(shown, shown[1:]) if b - a > 1e-6]
    source.frame_gap_s = min(gaps) if gaps else source.frame_gap_s
    source.reorder_s = max([p.pts - p.dts for p in packets if p.dts is not None] or [0.0])
    tol = source.tolerance()
    keys = [i for i, p in enumerate(packets) if p.keyframe and p.pts <= start_s + tol]
    if not keys:
        return   # no keyframe before the start was read: only a decode from the start is sure
    source.keyframe, source.after_key = packets[keys[-1]], packets[keys[-1]:]
    if whole:   # else damage ended the read inside the clip: no count to expect
        source.frames = sum(1 for t in shown if start_s - tol <= t < end_s - tol)


def copy_is_exact(source: ClipSource, start_s: float, end_s: float) -> bool:
    """Whether a stream copy from the keyframe holds exactly the clip's frames: the clip starts on that
    keyframe, the demuxer seeks there, and the clip's frames are the first packets from it in decode
    order (none shown inside the clip is decoded after one shown past its end)."""
    key, n, tol = source.keyframe, source.frames, source.tolerance()
    if key is None or not n or not source.seeks_by_pts or abs(key.pts - start_s) > tol:
        return False
    return all(start_s - tol <= p.pts < end_s - tol for p in source.after_key[:n])


class Written(NamedTuple):
    frames: int        # video frames in the file (0: no video stream)
    sizes: list[int]   # their packets' sizes, in decode order
    first_s: float | None = None   # the first frame's time as players and PyAV's `frame.time` read it
    duration_s: float | None = None   # how long the video stream lasts, as its header says (players, PyAV)


def written_frames(path: str) -> Written:
    """The video frames an output file holds, counted from its packets (nothing is decoded)."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = video_stream(container)
            if stream is None:
                return Written(0, [])
            shown = [p for p in container.demux(stream) if p.size and not p.is_discard]
            times = [p.pts * stream.time_base for p in shown if p.pts is not None]
            first = float(min(times)) if times else None
            if stream.duration is not None:
                duration = float(stream.duration * stream.time_base)
            else:   # no header says: until the last frame stops showing
                ends = [(p.pts + (p.duration or 0)) * stream.time_base for p in shown if p.pts is not None]
                duration = float(max(ends)) - first if ends else None
            return Written(len(shown), [p.size for p in shown], first, duration)
    except av.error.FFmpegError:
        return Written(0, [])


def cut_clip(path: str, start_s: float, duration_s: float | None, out: str, *, copy: bool = False,
             crf: int = 18, faststart: bool = False) -> str:
    """Write [start_s, start_s + duration_s) of `path` (video-relative seconds; `duration_s` None: the
    whole video) into `out` (.mp4). `copy`: a stream copy where it is exact (`copy_is_exact`). Returns
    how it was written ("copy" or "encode"); raises MediaError(CLIP_NOT_WRITTEN), leaving no `out`,
    when no attempt gives a file with the clip's frames."""
    end_s = None if duration_s is None else start_s + duration_s
    source = clip_source(path, start_s, end_s)
    mux = ["-map", source.video_map, "-map", "0:a?", "-metadata", f"comment={CUT_MARK}",
           *(["-movflags", "+faststart"] if faststart else [])]
    problems = []
    for how, args in _attempts(path, source, start_s, end_s, copy, crf):
        try:
            run_ffmpeg([*args, *mux, out])
        except MediaError as e:
            if e.reason != "ffmpeg_failed":
                raise
            problems.append(f"{how}: {e.message}")
            continue
        why = wrong_output(source, written_frames(out), exact=how == "copy", at_zero=how == "copy",
                           length_s=duration_s)
        if why is None:
            return "copy" if how == "copy" else "encode"
        problems.append(f"{how}: {why}")
    if os.path.exists(out):
        os.remove(out)
    span = f"{start_s:.6f}s +{duration_s:.6f}s" if duration_s is not None else "the whole video"
    raise MediaError(CLIP_NOT_WRITTEN, f"clip {span} of {os.path.basename(path)} not written: " + "; ".join(problems))


def wrong_output(source: ClipSource, written: Written, exact: bool = False, at_zero: bool = False,
                 length_s: float | None = None) -> str | None:
    """Why a written clip is not the clip, or None: no video, a frame count far from the clip's, (a copy)
    packets that are not the source's from the keyframe on, (`at_zero`) a first frame not at time 0, or
    (`length_s`, where the clip's frames are known) a file that lasts more than a frame more or less."""
    if not written.frames:
        return "the file holds no video frames"
    # clip-relative times (answers, `{{t:}}`) address the file's frames by time: a first frame shown late
    # (a copy's B-frame delay kept without an edit list, 2 frames with x264) shifts every one of them
    if at_zero and (written.first_s is None or abs(written.first_s) > source.frame_gap_s / 2):
        return f"its first frame is at {written.first_s} s, not 0"
    n = source.frames
    if exact and written.sizes != [p.size for p in source.after_key[:n or 0]]:
        return f"the copy's {written.frames} packets are not the clip's {n} from its keyframe"
    # an encode may round a frame at either end; a seek that landed wrong loses or adds many
    if n is not None and abs(written.frames - n) > max(1, n // 20):
        return f"{written.frames} frames where the clip has {n}"
    # a reader (a trainer, a player) takes the file's length from its header: a held slide's clip that
    # lasts its last sample's 0.12 s instead of the 2.52 s the row says shows nothing past 0.12 s
    if length_s is not None and n is not None and (
            written.duration_s is None or abs(written.duration_s - length_s) > source.frame_gap_s):
        return f"it lasts {written.duration_s} s where the clip lasts {length_s:.6f} s"
    return None


def _attempts(path: str, source: ClipSource, start_s: float, end_s: float | None, copy: bool, crf: int):
    """(name, ffmpeg input and codec arguments) of each way to write the clip, in the order tried."""
    encode = ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p", "-c:a", "aac"]
    if source.time_base:   # else 1/(mean rate): a variable-rate video's frames moved by up to half a frame
        encode[:0] = ["-enc_time_base:v", source.time_base]
    if source.odd_size:   # pad rather than scale: every picture keeps its pixels, plus a black row or column
        encode[:0] = ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
    if end_s is None:
        yield "encode", ["-i", path, *encode]
        return
    length = _seconds(end_s - start_s)
    hold = _hold_last(source, start_s, end_s)
    # the clip's start on ffmpeg's clock (which counts from the container's start), a hair early so that
    # rounding never drops the first frame (the next frame's time is never this close)
    start = start_s + source.offset_s - source.tolerance()
    if copy and copy_is_exact(source, start_s, end_s):
        # `-avoid_negative_ts disabled`: the copy's first frame is shown at 0 and its decode time (the
        # B-frame delay) below 0, which MP4 keeps in an edit list and Matroska as is. Measured on x264
        # with B-frames (25 / 29.97 fps, -bf 3 pyramid, VFR, a 10 s container start, sound before the
        # video): `make_zero` and `make_non_negative` move the decode time to 0 and the first frame to
        # the delay (0.08 s at 25 fps, 0.2 s at 10 fps, more where the sound starts first); `auto` is
        # right in MP4 but not in Matroska with sound (0.04 s); `-output_ts_offset -delay` and
        # `+negative_cts_offsets` with `make_zero` change nothing. MPEG-TS starts at its mux delay (1.4 s)
        # whatever the option: `wrong_output(at_zero=True)` turns such a copy into an encode.
        yield "copy", ["-ss", _seconds(_seek_point(source)), "-i", path, "-t", length, "-c", "copy",
                       "-frames:v", str(source.frames), "-avoid_negative_ts", "disabled", *hold]
    seek = _seek_point(source) if source.keyframe is not None else 0.0
    if seek > 0:
        yield "encode from the keyframe", ["-ss", _seconds(seek), "-i", path, "-ss", _seconds(max(0.0, start - seek)),
                                           "-t", length, *encode, *hold]
    yield "encode from the file's start", ["-i", path, "-ss", _seconds(max(0.0, start)), "-t", length, *encode, *hold]


def _hold_last(source: ClipSource, start_s: float, end_s: float) -> list[str]:
    """ffmpeg output arguments that make the file last the clip, its last frame shown until the clip's end
    (a copy's as well as an encode's), whatever the source's sample durations said (a variable-rate
    video's, B-frame-reordered, run seconds short of or past the clip). The `setts` bitstream filter times
    the video packets from the first one, the clip's first frame (an encode's seek left it a hair late),
    and sets their durations: MP4 keeps only the last sample's (the others' come from the decode times),
    and ends the presentation at the latest time plus duration of any. Nothing where the clip's frames
    are unknown (damage ended the read)."""
    if source.frames is None:
        return []
    length = f"{end_s - start_s!r}/TB"
    # each: until the clip's end; the last one (NEXT_DTS none) at least until the track's decode span is the
    # clip's length too (MP4's media duration, which readers take where it is shorter than the presentation:
    # a last frame decoded later after its display time than the first one was put the end early)
    until_end = f"max(0,{length}-(PTS-STARTPTS))"
    duration = f"if(eq(NEXT_DTS,NOPTS),max({until_end},{length}-(DTS-STARTDTS)),{until_end})"
    # pts and dts given: left out, both would take the one `ts` expression, whose TS is the dts
    return ["-bsf:v", f"setts=pts=PTS-STARTPTS:dts=DTS-STARTPTS:duration='{duration}'"]


def _seek_point(source: ClipSource) -> float:
    """Where ffmpeg's input `-ss` lands at or before the clip's keyframe and decodes from it (`_seeks_by_pts`)."""
    key = source.keyframe
    if source.seeks_by_pts:
        at = key.pts + source.offset_s
    else:
        decoded = key.dts if key.dts is not None else key.pts - source.reorder_s
        # a quarter of a frame before it: half a frame is a rounding knife-edge on a 1001/30000 clock, where AVI at
        # 29.97 fps then opened every clip on the frame before its cut (outside check h22)
        at = decoded + source.offset_s - source.frame_gap_s / 4
    return max(0.0, math.floor(at * 1e6) / 1e6)   # rounded down: never past the keyframe


def _seconds(t: float) -> str:
    return f"{t:.6f}"


def holds_clip(out: str, path: str, start_s: float, duration_s: float) -> bool:
    """Whether `out`, written earlier, holds the clip [start_s, start_s + duration_s) of `path`: it carries
    CUT_MARK (a file an older vdata cut may be empty, off by a shot or start grey) and passes the checks
    of a fresh cut, its first frame at 0 (an older vdata's copies started a B-frame delay late) and its
    length the clip's (an older vdata's clip of a held slide lasted its last sample's duration)."""
    import av

    try:
        with av.open(out, metadata_errors="ignore") as container:
            if container.metadata.get("comment") != CUT_MARK:
                return False
        source = clip_source(path, start_s, start_s + duration_s)
    except (MediaError, av.error.FFmpegError):
        return False
    return wrong_output(source, written_frames(out), at_zero=True, length_s=duration_s) is None
