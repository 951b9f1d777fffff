"""One decode for coarse-to-fine cut detection: reference frames everywhere, every frame where the
packets say a cut may be.

Why not two passes (vdata/media/cuts.py: a reference-frames pass, then a pass over the windows it
marks): a window starts a few frames before its cut, and a frame there decodes exactly only after
every reference frame since the keyframe before it. Encoders put keyframes at cuts (x264's
scenecut), so each window's context lies in the GOP before, and the window pass decoded nearly every
reference frame a second time (bench/bench_shots.py: 435 decoded frames on top of the coarse pass's
296 of 536, at 720p).

Here the decision comes before the decode, from the packets (`packet_windows`): a keyframe that
arrives off the GOP's period (a scenecut), or an I/P frame whose packet is `HINT_RATIO` times the
median of the I/P packets around it (a picture that could not be predicted from the one before). One
decode then skips non-reference frames outside those windows and keeps every frame inside them:
tiny images of the reference frames (nal_ref_idc from the packets: exactly cuts.coarse_scan's) and
the detector over each window, as cuts.detect_in_windows runs it. The caller then marks windows from
the tiny images as before, leaving out frames the detector has already judged; one the packets
missed is decoded afterwards with cuts.decode_windows, so the cuts never depend on the packet hints,
only the time does.

Measured (bench/bench_shots.py, same machine and load): 0.93-1.2x PySceneDetect's CPU time where
the two-pass design took 0.73-0.86x. What is left: the reference frames (PySceneDetect's CPU time
over their decode alone is 1.7-2.5x), the hinted frames, and the windows decoded again, which are
mostly fast motion (a gap between reference frames that moved as much as a cut could).
"""
from __future__ import annotations

import time

import numpy as np

from .convert import small_bgr
from .cuts import LAYOUT_SIZE, CoarseScan, FrameTable, _tiny_hsv, hsv_distance, widen_and_merge
from .streams import scaled_size, video_stream

# An I/P packet this many times the median of its HINT_SIDE I/P neighbours on each side marks a
# possible cut: at a cut a P-frame is coded nearly intra (2-10x its neighbours on the bench videos),
# while motion inside a shot moves sizes by well under 1.5x.
HINT_RATIO = 1.6
HINT_SIDE = 8
# Where the packets cannot say which frames are references (codecs other than H.264), a run of this many
# consecutive frames the decoder gave back means it skips nothing there (VP9 from libvpx, MPEG-2 without
# B-frames): the run's frames can be fed to the detector as they come, as a full pass feeds them, so that
# no window is decoded again. That pays where decoding a frame costs more than analysing it (VP9 720p:
# 1.51 s -> 1.0-1.1 s), not where decoding is cheap (MPEG-2: 0.54 s -> 0.66 s fed whole), so the pass measures both
# as it goes (the first STREAK_TRIAL frames fed tell the analysis's cost). A B-pyramid (HEVC, AV1) gives
# back every other frame: never such a run.
STREAK_TO_FEED = 8
STREAK_TRIAL = 16


def packet_windows(table: FrameTable, before: int, after: int) -> list[tuple[int, int]]:
    """[first, last] frames where the packets suggest a cut: the span from the previous anchor to a
    keyframe off the GOP period, or to an anchor whose packet stands out; widened and merged."""
    n = len(table.times)
    if table.anchors is None or table.sizes is None or n < 2:
        return []
    keys = table.keyframes
    # A short fixed GOP (-g 12) puts a keyframe every second or more often: those say nothing about
    # cuts and would cover most frames. Longer regular steps may be cuts at regular times: flagged.
    period = None
    steps, counts = np.unique(np.diff(keys), return_counts=True)
    if len(counts) and counts.max() >= 3 and steps[counts.argmax()] <= table.fps:
        period = int(steps[counts.argmax()])
    is_key = np.zeros(n, bool)
    is_key[keys] = True
    anchors = table.anchors
    plain = anchors[~is_key[anchors]]
    plain_sizes = table.sizes[plain].astype(float)
    spans = []
    for k, a in enumerate(anchors):
        if a == 0:
            continue
        if is_key[a]:
            prev_key = keys[np.searchsorted(keys, a) - 1]
            # x264 lets a fixed GOP drift by a frame where B-frames end it (keyframes 11 or 12 apart
            # at -g 12): that is still the period. A cut the hints miss is still found (see above).
            flagged = period is None or abs(a - prev_key - period) > 1
        else:
            p = int(np.searchsorted(plain, a))
            near = np.concatenate([plain_sizes[max(0, p - HINT_SIDE):p], plain_sizes[p + 1:p + 1 + HINT_SIDE]])
            flagged = len(near) > 0 and table.sizes[a] >= HINT_RATIO * float(np.median(near))
        if flagged:
            spans.append((int(anchors[k - 1]) + 1 if k else 0, int(a)))
    return widen_and_merge(spans, n, before, after)


def settled(windows: list[tuple[int, int]], n: int, settle: int, tail: int = 0) -> np.ndarray:
    """Frames whose verdict a detector run over `windows` gives as a full pass would: all but the
    first `settle` frames of each window (the first window starts with the video) and the last
    `tail` (an adaptive detector judges a frame once it has seen `tail` more; the last window
    ends with the video, where post_process judges the rest)."""
    core = np.zeros(n, bool)
    for a, b in windows:
        core[(a + settle if a > 0 else 0):(b + 1 if b >= n - 1 else b + 1 - tail)] = True
    return core


def one_pass(path: str, table: FrameTable, windows: list[tuple[int, int]], max_side: int, new_detector,
             settle: int, tail: int, on_frame=None) -> tuple[CoarseScan, list[int], np.ndarray]:
    """(tiny images of the reference frames, the cuts the detector finds in `windows`, the frames it
    has judged as a full pass would: `settled` over the runs of frames it was fed). One threaded
    decode: non-reference frames are skipped outside `windows`; inside them every frame is converted
    with convert.small_bgr at `max_side`, as a full pass converts it, and fed to a fresh detector per
    run of consecutive frames; a run's first `settle` frames (scored against nothing) yield no cut.
    Without reference flags (`table.refs` None) the runs are those the decoder skips nothing in
    (`STREAK_TO_FEED`)."""
    import av
    from scenedetect import FrameTimecode

    n = len(table.times)
    refs = table.refs
    if windows and refs is None:
        raise ValueError("windows need to know the reference frames (FrameTable.refs)")
    index_of = {int(p): i for i, p in enumerate(table.pts)}
    inside = np.zeros(n, bool)
    for a, b in windows:
        inside[a:b + 1] = True
    fed = np.zeros(n + 1, bool)
    indices, distances, layouts, errors, concealed = [], [], [], 0, []
    previous = None
    raw: list[int] = []
    detector, expected = None, None
    streak, last = 0, None   # consecutive frames given back, ending at the frame `last`
    decode_s, decoded, analysis_s, analysed = 0.0, 0, 0.0, 0   # seconds in packet.decode; in streak frames' analysis
    with av.open(path, metadata_errors="ignore") as container:
        stream = video_stream(container)
        stream.thread_type = "AUTO"   # frame threads copy the skip setting with each packet they take
        cc = stream.codec_context
        width, height = scaled_size(cc.width, cc.height, max_side)
        for packet in container.demux(stream):
            i = index_of.get(packet.pts) if packet.pts is not None else None
            cc.skip_frame = "DEFAULT" if i is not None and inside[i] else "NONREF"
            started = time.perf_counter()
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                errors += 1
                continue
            decode_s, decoded = decode_s + time.perf_counter() - started, decoded + len(frames)
            for frame in frames:
                j = index_of.get(frame.pts)
                if j is None:
                    continue
                if frame.is_corrupt:   # the decoder concealed damage: shots checks the whole video
                    concealed.append(j)
                if refs is None or refs[j]:   # the coarse pass is the reference frames, as coarse_scan's
                    hsv, layout = _tiny_hsv(frame)
                    indices.append(j)
                    layouts.append(layout)
                    distances.append(0.0 if previous is None else hsv_distance(previous, hsv))
                    previous = hsv
                streak, last = (streak + 1 if last is not None and j == last + 1 else 1), j
                by_streak = (not inside[j] and refs is None and streak >= STREAK_TO_FEED
                             and (analysed < STREAK_TRIAL or decode_s / decoded > analysis_s / analysed))
                if not (inside[j] or by_streak):
                    continue
                started = time.perf_counter()
                bgr = small_bgr(frame, width, height)
                if j != expected:
                    detector = new_detector()
                tc = FrameTimecode(j, table.fps)
                raw.extend(c.frame_num for c in detector.process_frame(tc, bgr))
                if j == n - 1:
                    raw.extend(c.frame_num for c in detector.post_process(tc))
                if on_frame is not None:
                    on_frame(j, bgr)
                fed[j] = True
                expected = j + 1
                if by_streak:
                    analysis_s, analysed = analysis_s + time.perf_counter() - started, analysed + 1
    coarse = CoarseScan(np.asarray(indices, dtype=np.int64), np.asarray(distances),
                        np.asarray(layouts, np.uint8).reshape(len(indices), *LAYOUT_SIZE[::-1], 3), errors, concealed)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], fed.astype(np.int8)])))   # run starts, ends (exclusive)
    runs = [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]
    core = settled(runs, n, settle)
    return coarse, sorted({c for c in raw if 0 < c < n and core[c]}), settled(runs, n, settle, tail)
