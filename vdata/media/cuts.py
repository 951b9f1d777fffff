"""Coarse-to-fine decoding for cut detection: decode few frames everywhere, every frame only where a cut may be.

A full decode of 720p H.264 is the floor of a one-pass shot detector. Most of its frames are B-frames
that nothing references; libavcodec can skip them (`skip_frame = NONREF`) and still decode every
reference frame exactly. So:

1. `frame_table`: demux without decoding: every frame's display index, time and keyframe flag (ms).
2. `coarse_scan`: decode the reference frames only, each to a tiny HSV image; a cut between two
   consecutive reference frames changes the picture between them, so their distance is large.
3. `windows_from_gaps`: the gaps whose distance passes a low bar, widened by the context the detector
   needs, merged.
4. `decode_windows`: seek to the keyframe before each window, decode reference frames only up to it
   and every frame inside it, converted exactly as a full pass converts them.

The caller runs its detector on the window frames only. Where the structure does not help (every
frame a keyframe, no timestamps, windows covering most of the video) the caller decodes everything
instead. For H.264 the default path does steps 2 and 4 in one decode where the packets hint at a cut
(vdata/media/cut_pass.py); `decode_windows` then serves only the windows the hints missed.

What bounds it (bench/bench_shots.py, 720p/1080p, a cut every ~2.5 s): the two-pass design decoded the
reference frames twice, once everywhere and once from each window's keyframe (435 frames on top of
296 of 536 at 720p, x264 defaults), at 0.73-0.86x PySceneDetect's CPU time. Exact cuts need the frame
before each cut decoded exactly, hence every reference frame since the keyframe before it; encoders
put keyframes at cuts, so that is the whole GOP before: PySceneDetect's CPU time over a
reference-frames-only decode (1.7-2.5x there) bounds any design that keeps the full pass's cuts. A
keyframes-only pass would allow 4.6-59x, but keyframes are the encoder's guess (x264 placed one 2 frames
after a cut, none at all with scenecut=0), and the frame before a keyframe cut is not among them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .convert import small_bgr
from .streams import frame_rate, scaled_size, shown_packets, skips_per_packet, video_stream

# Side of the tiny images the coarse pass compares (pixels): enough to see a cut, cheap to convert.
COARSE_SIDE = 64
# The coarser image kept per reference frame for gradual transitions: motion averages out at this size.
LAYOUT_SIZE = (16, 9)
# Windows covering more than this share of the frames decode nearly everything: a full pass is cheaper.
MAX_WINDOW_SHARE = 0.5
# A seek that lands past a window's start is tried again from this many keyframes further back, at most.
SEEK_RETRIES = 3


class IncompleteWindows(Exception):
    """A window's frames did not all decode: its verdicts are not a full pass's, decode everything."""


@dataclass
class FrameTable:
    """Every frame of the first video stream in display order, from packets alone."""

    times: np.ndarray          # seconds from the stream's first frame, as a full PyAV decode gives them
    pts: np.ndarray            # display-order presentation timestamps
    keyframes: np.ndarray      # display indices of keyframes (seek points)
    fps: float
    problem: str | None = None  # why the table cannot stand in for a decode (then decode everything)
    sizes: np.ndarray | None = None    # packet size of each frame (bytes), display order
    anchors: np.ndarray | None = None  # display indices of frames decoded before every frame shown earlier (I/P)
    refs: np.ndarray | None = None     # whether each frame is a reference picture (H.264 only), display order


def frame_table(path: str) -> FrameTable:
    import av

    with av.open(path, metadata_errors="ignore") as container:
        stream = video_stream(container)
        fps = frame_rate(stream) or 25.0
        tb = float(stream.time_base)
        start = float(stream.start_time or 0) * tb
        pts, keys, sizes, refs = [], [], [], []
        length_size = _avc_length_size(stream.codec_context)
        for packet in shown_packets(container, stream):
            pts.append(packet.pts)
            keys.append(packet.is_keyframe)
            sizes.append(packet.size)
            if length_size is not None:
                refs.append(_h264_reference(memoryview(packet), length_size))
    empty = np.zeros(0)
    if not pts:
        return FrameTable(empty, empty, empty.astype(int), fps, "no packets")
    if any(p is None for p in pts):
        return FrameTable(empty, empty, empty.astype(int), fps, "packets without timestamps")
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    sorted_pts = np.asarray(pts, dtype=np.int64)[order]
    problem = None
    if np.any(np.diff(sorted_pts) <= 0):
        problem = "duplicate timestamps"
    elif all(keys):
        problem = "every frame is a keyframe (intra-only): nothing to skip"
    keyframes = np.flatnonzero(np.asarray(keys)[order])
    times = sorted_pts * tb - start
    decode_pts = np.asarray(pts, dtype=np.int64)
    # An anchor (I or P frame) arrives before the B-frames shown ahead of it: its timestamp passes
    # every earlier packet's. Without reordering every frame is one.
    first_max = np.concatenate([[True], decode_pts[1:] > np.maximum.accumulate(decode_pts)[:-1]])
    anchors = np.sort(np.searchsorted(sorted_pts, decode_pts[first_max]))
    known = length_size is not None and None not in refs
    return FrameTable(times, sorted_pts, keyframes, fps, problem, np.asarray(sizes)[order], anchors,
                      np.asarray(refs, bool)[order] if known else None)


def _avc_length_size(cc) -> int | None:
    """Bytes before each NAL unit of an H.264 packet (4 in MP4; 0 = Annex B start codes), None when
    the stream is not H.264."""
    if cc.name != "h264":
        return None
    extra = cc.extradata or b""
    return (extra[4] & 3) + 1 if len(extra) > 4 and extra[0] == 1 else 0


def _h264_reference(data: memoryview, length_size: int) -> bool | None:
    """Whether the picture in an H.264 packet is a reference (nal_ref_idc of its first slice), None
    when no slice is found: what skip_frame NONREF decodes, read from the bitstream."""
    n, at = len(data), 0
    while at < n:
        if length_size:
            size = int.from_bytes(data[at:at + length_size], "big")
            start, at = at + length_size, at + length_size + size
        else:
            found = bytes(data[at:]).find(b"\x00\x00\x01")
            if found < 0:
                return None
            start = at + found + 3
            nxt = bytes(data[start:]).find(b"\x00\x00\x01")
            at = n if nxt < 0 else start + nxt
        if start < n and (data[start] & 0x1F) in (1, 5):   # a coded slice (non-IDR, IDR)
            return bool(data[start] >> 5 & 3)
    return None


def _plane(frame, k: int, width: int, height: int) -> np.ndarray:
    plane = frame.planes[k]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:height, :width]


def _tiny_hsv(frame) -> np.ndarray:
    """The frame as a tiny HSV image. From the YUV planes with an area resize: swscale's scaling of a
    720p frame costs more than decoding it."""
    import cv2

    w, h = frame.width, frame.height
    scale = COARSE_SIDE / max(w, h)
    size = (max(2, round(w * scale)), max(2, round(h * scale)))
    if frame.format.name in ("yuv420p", "yuvj420p"):
        y = cv2.resize(_plane(frame, 0, w, h), size, interpolation=cv2.INTER_AREA)
        u = cv2.resize(_plane(frame, 1, (w + 1) // 2, (h + 1) // 2), size, interpolation=cv2.INTER_AREA)
        v = cv2.resize(_plane(frame, 2, (w + 1) // 2, (h + 1) // 2), size, interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(cv2.merge([y, u, v]), cv2.COLOR_YUV2BGR)
    else:
        bgr = frame.to_ndarray(width=size[0], height=size[1], format="bgr24")
    layout = cv2.resize(bgr, LAYOUT_SIZE, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).astype(np.int16), cv2.cvtColor(layout, cv2.COLOR_BGR2HSV)


def hsv_distance(a: np.ndarray, b: np.ndarray) -> float:
    """PySceneDetect's content score (mean |ΔH|, |ΔS|, |ΔV|, averaged) on two tiny images."""
    return float(np.abs(a - b).mean())


@dataclass
class CoarseScan:
    indices: np.ndarray        # display indices of the decoded (reference) frames
    distances: np.ndarray      # distance of each decoded frame to the one before it (0 for the first)
    layouts: np.ndarray        # a 16x9 HSV image of each decoded frame (uint8), for gradual transitions
    decode_errors: int = 0
    concealed: list[int] = field(default_factory=list)   # frames the decoder concealed damage in (display indices)


def coarse_scan(path: str, table: FrameTable) -> CoarseScan:
    """Decode only reference frames (threaded), each to a tiny HSV image; distance between neighbours."""
    import av

    index_of = {int(p): i for i, p in enumerate(table.pts)}
    indices, distances, layouts, errors, concealed = [], [], [], 0, []
    previous = None
    with av.open(path, metadata_errors="ignore") as container:
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONREF"
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                errors += 1
                continue
            for frame in frames:
                i = index_of.get(frame.pts)
                if i is None:
                    continue
                if frame.is_corrupt:
                    concealed.append(i)
                hsv, layout = _tiny_hsv(frame)
                indices.append(i)
                layouts.append(layout)
                distances.append(0.0 if previous is None else hsv_distance(previous, hsv))
                previous = hsv
    return CoarseScan(np.asarray(indices, dtype=np.int64), np.asarray(distances),
                      np.asarray(layouts, np.uint8).reshape(len(indices), *LAYOUT_SIZE[::-1], 3), errors, concealed)


def windows_from_gaps(coarse: CoarseScan, n: int, bar: float, before: int, after: int,
                      sure: float | None = None, ratio: float | None = None,
                      settled: np.ndarray | None = None) -> list[tuple[int, int]]:
    """[first, last] frame windows to decode fully: each gap (previous reference frame, this one]
    whose distance reaches `sure`, or reaches `bar` and (with `ratio`) `ratio` times the mean of the
    two gaps either side (a change that stands out from the motion around it, as an adaptive
    detector wants); plus frames no reference frame brackets; widened by `before`/`after` frames of
    detector context and merged where they touch. A gap whose frames are all `settled` (judged by
    the detector already, with full context) needs no window."""
    idx, dist = coarse.indices, coarse.distances
    beside = np.zeros(len(dist))
    for k in range(1, len(dist)):
        near = [dist[j] for j in (k - 2, k - 1, k + 1, k + 2) if 0 < j < len(dist)]
        beside[k] = float(np.mean(near)) if near else 0.0
    marked = [k for k in range(1, len(idx))
              if (sure is not None and dist[k] >= sure)
              or (dist[k] >= bar and (ratio is None or dist[k] >= ratio * beside[k]))]
    spans = [(int(idx[k - 1]) + 1, int(idx[k])) for k in marked]
    if settled is not None:
        spans = [(a, b) for a, b in spans if not settled[a:b + 1].all()]
    if len(idx) and idx[-1] < n - 1:
        spans.append((int(idx[-1]) + 1, n - 1))
    if len(idx) and idx[0] > 0:
        spans.insert(0, (0, int(idx[0])))
    return widen_and_merge(spans, n, before, after)


def widen_and_merge(spans: list[tuple[int, int]], n: int, before: int, after: int) -> list[tuple[int, int]]:
    """[first, last] spans (sorted by first) widened by `before`/`after` frames, merged where they touch."""
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        a, b = max(0, a - before), min(n - 1, b + after)
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


@dataclass
class WindowFrames:
    """Frames decoded inside the windows: (display index, time, image) in display order."""

    frames: Iterator[tuple[int, float, np.ndarray]]
    decode_errors: list[float] = field(default_factory=list)


def decode_windows(path: str, table: FrameTable, windows: list[tuple[int, int]], size: tuple[int, int],
                   fmt: str = "bgr24") -> Iterator[tuple[int, float, np.ndarray]]:
    """Every frame inside `windows` (display indices, inclusive), converted as a full PyAV pass
    converts it (convert.small_bgr, or `to_ndarray(size, fmt)`). Seeks to the keyframe before each
    window (or decodes on when the window starts within reach; seeks again from further back where a
    seek lands past the window's start), skipping non-reference frames outside the windows. A frame
    that does not come back is missing from the output: `detect_in_windows` checks."""
    import av

    index_of = {int(p): i for i, p in enumerate(table.pts)}
    # Skipping is judged against every window, not the one being read: with reordered frames (B-pyramids)
    # the packet of a later window's frame may go to the decoder while an earlier window is still read
    inside = np.zeros(len(table.times), bool)
    for first, last in windows:
        inside[first:last + 1] = True
    width, height = size
    with av.open(path, metadata_errors="ignore") as container:
        stream = video_stream(container)
        stream.thread_type = "AUTO"   # frame threads copy the skip setting with each packet they take
        cc = stream.codec_context
        skipping = skips_per_packet(cc)
        position = -1   # display index of the last frame decoded, -1 = not decoding
        packets = None
        for first, last in windows:
            k = int(np.searchsorted(table.keyframes, first, side="right")) - 1
            # no keyframe shown at or before the window (a copy-cut whose edit list hides the keyframe of
            # its first frames): seeking backward from the first frame shown lands on the hidden one
            seek = packets is None or position < (int(table.keyframes[k]) if k >= 0 else 0) or position >= first
            back = 0   # keyframes further back than the one before the window
            while True:
                if seek:
                    key = int(table.keyframes[k - back]) if k - back >= 0 else 0
                    container.seek(int(table.pts[key]), stream=stream, backward=True, any_frame=False)
                    packets = container.demux(stream)
                landed, overshot, done = not seek, False, False
                for shown in _decoded(packets, index_of, cc, skipping, inside):
                    for j, frame in shown:
                        if not landed:
                            landed = True
                            # a seek in a stream without an index (MPEG-TS, MPEG-PS) can land past the
                            # keyframe asked for: the window's first frames never decode from there
                            overshot = j > first and k - back >= 0 and back < SEEK_RETRIES
                            if overshot:
                                break
                        position = j
                        if first <= j <= last:
                            image = small_bgr(frame, width, height) if fmt == "bgr24" else \
                                frame.to_ndarray(width=width, height=height, format=fmt)
                            yield j, float(table.times[j]), image
                        if j >= last:
                            done = True
                    if done or overshot:
                        break
                if not overshot:
                    break
                back, seek = back + 1, True


def _decoded(packets, index_of: dict[int, int], cc, skipping: bool, inside: np.ndarray):
    """For each packet sent to the decoder, the frames it let out: [(display index, frame)]. Non-reference
    frames outside `inside` are skipped where the decoder allows it (`skipping`); a packet without a time
    (MPEG-PS B-frames) may belong to a window, and is decoded."""
    import av

    for packet in packets:
        i = index_of.get(packet.pts) if packet.pts is not None else None
        cc.skip_frame = "NONREF" if skipping and i is not None and not inside[i] else "DEFAULT"
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            continue
        yield [(index_of[frame.pts], frame) for frame in frames if frame.pts in index_of]


def detect_in_windows(path: str, table: FrameTable, windows: list[tuple[int, int]], max_side: int, new_detector,
                      settle: int, on_frame=None) -> list[int]:
    """Cuts a PySceneDetect detector finds over the frames of `windows` (each frame scaled to
    `max_side` as a full PyAV pass scales it): a fresh detector per window, as if the video started
    there, so a window's first `settle` frames (scored against nothing) yield no cut."""
    import av
    from scenedetect import FrameTimecode

    n = len(table.times)
    with av.open(path, metadata_errors="ignore") as container:
        cc = video_stream(container).codec_context
        size = scaled_size(cc.width, cc.height, max_side)
    raw: list[int] = []
    detector, expected = None, None
    decoded = np.zeros(n, bool)
    for index, _, bgr in decode_windows(path, table, windows, size):
        decoded[index] = True
        if index != expected:
            detector = new_detector()
        tc = FrameTimecode(index, table.fps)
        raw.extend(c.frame_num for c in detector.process_frame(tc, bgr))
        if index == n - 1:
            raw.extend(c.frame_num for c in detector.post_process(tc))
        if on_frame is not None:
            on_frame(index, bgr)
        expected = index + 1
    missing = [a + int(np.argmin(decoded[a:b + 1])) for a, b in windows if not decoded[a:b + 1].all()]
    if missing:   # a detector fed a window with holes sees no cut in it (a fresh one for each gap)
        raise IncompleteWindows(f"frame {missing[0]} of a window did not decode")
    core = np.zeros(n + 1, bool)
    for a, b in windows:
        core[(a + settle if a > 0 else 0):b + 1] = True
    return sorted({c for c in raw if 0 < c < n and core[c]})


# Containers whose packets carry their own timestamps on the way (a broadcast or network capture): packets
# lost there leave a gap in the times. An MP4, MKV or AVI index was written by the muxer, so a gap there is
# the file's own timing (a variable-rate screen recording's held pictures), never lost data.
STAMPED_FORMATS = ("mpegts", "mpegtsraw", "mpeg", "flv")


@dataclass
class DecodeReport:
    """A full decode looking for damage, frames in the order the decoder lets them out (display order)."""

    times: np.ndarray       # seconds from the stream's first frame
    keys: np.ndarray        # keyframes: decoding starts afresh there
    corrupt: np.ndarray     # frames the decoder concealed damage in (libavcodec's corrupt-frame flag)
    errors: list[tuple[float, int, float | None]]   # failed packets: (time, frames out before, previous packet's time)
    stamped: bool           # the container is one of STAMPED_FORMATS
    continuity_breaks: list = field(default_factory=list)   # MPEG-TS: times where the video's packets were lost
    refs: np.ndarray | None = None   # whether other pictures may be predicted from each frame (H.264: nal_ref_idc)
    anchors: np.ndarray | None = None   # I and P pictures: the B-pictures shown before one may be predicted from it


def decode_damage(path: str) -> DecodeReport:
    """Decode every frame of `path` (no pixel conversion) and note what went wrong where. Slice threads
    only: with frame threads a decoder reports an error a few packets late."""
    import av

    from .timestamps import display_times_unreliable

    counted = display_times_unreliable(path, 8)   # no trustworthy times: frames counted, as PyAVReader does
    times, keys, corrupt, errors, refs, ref_of, anchors = [], [], [], [], [], {}, []
    with av.open(path, metadata_errors="ignore") as container:
        stream = video_stream(container)
        stream.thread_type = "SLICE"
        length_size = _avc_length_size(stream.codec_context)
        tb, fps = float(stream.time_base), frame_rate(stream) or 25.0
        start = float(stream.start_time or 0) * tb
        previous = None
        for packet in container.demux(stream):
            t = packet.pts if packet.pts is not None else packet.dts
            at = round(float(t) * tb - start, 6) if t is not None else None
            if length_size is not None and packet.pts is not None:
                ref_of[packet.pts] = _h264_reference(memoryview(packet), length_size)
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                errors.append((at if at is not None else -1.0, len(times), previous))
                continue
            previous = at if at is not None else previous
            for frame in frames:
                times.append(len(times) / fps if counted or frame.time is None else round(float(frame.time) - start, 6))
                keys.append(frame.key_frame)
                corrupt.append(frame.is_corrupt)
                refs.append(ref_of.pop(frame.pts, None) is not False)   # unknown: it may be
                anchors.append(int(frame.pict_type) not in (3, 7))   # AV_PICTURE_TYPE_B, _BI
        stamped = container.format.name in STAMPED_FORMATS
        breaks = continuity_breaks(path, stream.id, start) if container.format.name == "mpegts" else []
    return DecodeReport(np.asarray(times, np.float64), np.asarray(keys, bool), np.asarray(corrupt, bool), errors,
                        stamped, breaks, np.asarray(refs, bool), np.asarray(anchors, bool))


def continuity_breaks(path: str, pid: int, start_s: float) -> list[float]:
    """Where the 4-bit continuity counter of `pid`'s MPEG-TS packets jumps (a packet lost on the way; one repeated
    packet and a signalled discontinuity are allowed), as the time of the last PES before each jump, in seconds
    from `start_s`: what tells a capture that lost packets from a recording that held a picture, whose timestamps
    show the same gap. 188-byte packets, or 192 (M2TS: AVCHD, Blu-ray) and 204 ones, found by their sync bytes."""
    if os.path.getsize(path) == 0:   # np.memmap refuses an empty file
        return []
    data = np.memmap(path, dtype=np.uint8, mode="r")   # paged in as read: a capture may be gigabytes
    for size, sync in ((188, 0), (192, 4), (204, 0)):
        n = (len(data) - sync) // size
        if n >= 2 and np.mean(data[sync:sync + n * size:size] == 0x47) > 0.99:
            break
    else:
        return []
    packets = data[sync:sync + n * size].reshape(n, size)[:, :188]
    ours = (packets[:, 0] == 0x47) & ((((packets[:, 1] & 0x1F).astype(np.int64) << 8) | packets[:, 2]) == pid)
    packets = packets[ours & ((packets[:, 3] & 0x10) != 0)]   # packets of the PID that carry a payload
    if len(packets) < 2:
        return []
    cc = (packets[:, 3] & 0x0F).astype(np.int64)
    signalled = ((packets[:, 3] & 0x20) != 0) & (packets[:, 4] > 0) & ((packets[:, 5] & 0x80) != 0)
    step = (cc[1:] - cc[:-1]) % 16
    broken = np.flatnonzero((step != 1) & (step != 0) & ~signalled[1:]) + 1
    if not len(broken):
        return []
    times, last = [], None
    for k, packet in enumerate(packets):   # the PTS of each PES start, for the breaks after it
        if packet[1] & 0x40:
            at = 4 + (int(packet[4]) + 1 if packet[3] & 0x20 else 0)
            pes = packet[at:at + 14]
            if len(pes) == 14 and pes[0] == 0 and pes[1] == 0 and pes[2] == 1 and pes[7] & 0x80:
                pts = ((int(pes[9]) >> 1) & 7) << 30 | int(pes[10]) << 22 | (int(pes[11]) >> 1) << 15 | \
                    int(pes[12]) << 7 | int(pes[13]) >> 1
                last = pts / 90000.0 - start_s
        times.append(last)
    return [float(times[i - 1]) if times[i - 1] is not None else 0.0 for i in broken]
