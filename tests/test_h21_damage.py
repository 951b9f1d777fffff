"""Damage the decoder conceals, frames lost from a capture, and damaged spans that end where decoding
recovers (h21 findings F9, F10).

Every file is made here with ffmpeg: a 10 s H.264 video of three shots with a keyframe every 50 frames;
a copy with bytes overwritten in the middle of one reference picture's packet (no packet fails to decode:
the decoder conceals the damage and flags the frame); MPEG-2 transport streams of it that lost three
frames' packets (nothing fails or is flagged: the frames after the gap are predicted from the wrong
picture), or every third 188-byte packet over the middle fifth of the file (a lossy broadcast or UDP
capture); a copy with a stretch of its media data overwritten (packets fail; decoding recovers at the next
keyframe).
"""
import os
import random

import numpy as np
import pytest

from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.hashing import content_id
from vdata.media.probe import probe_video
from vdata.media.synth import Segment, damage_media_data, render_segments
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.shots import ShotsConfig, ShotsStage

CTX = RunContext(output_dir="/tmp/unused")
FPS = 25
FRAMES = 250


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("h21_damage")
    out = {"sound": str(d / "sound.mp4")}
    render_segments(out["sound"], [Segment("testsrc2", 4.0), Segment("mandelbrot", 3.0), Segment("testsrc", 3.0)],
                    size=(320, 180), fps=FPS, gop=50)
    out["concealed"] = str(d / "concealed.mp4")
    _damage_reference_picture(out["sound"], out["concealed"], at_s=5.0)
    out["concealed_b"] = str(d / "concealed_b.mp4")
    _damage_unreferenced_picture(out["sound"], out["concealed_b"], at_s=5.0)
    out["sound_ts"] = str(d / "sound.ts")   # MPEG-TS starts its clock at 1.4 s: a start offset
    run_ffmpeg(["-i", out["sound"], "-c:v", "mpeg2video", "-q:v", "4", "-g", "12", "-an", "-f", "mpegts",
                out["sound_ts"]])
    data = open(out["sound_ts"], "rb").read()
    n = len(data)
    lossy = bytearray()
    for i in range(0, n, 188):
        if not (0.4 * n < i < 0.6 * n and (i // 188) % 3 == 0):
            lossy += data[i:i + 188]
    out["lossy_ts"] = str(d / "lossy.ts")
    open(out["lossy_ts"], "wb").write(lossy)
    gap, pes = bytearray(), -1   # the packets of frames 124-126 (video PID 0x100; no B-frames): none is a keyframe
    for i in range(0, n, 188):
        packet = data[i:i + 188]
        video = ((packet[1] & 0x1F) << 8 | packet[2]) == 0x100
        pes += video and bool(packet[1] & 0x40)   # a PES (one frame) starts in this packet
        if not (video and 124 <= pes < 127):
            gap += packet
    out["gap_ts"] = str(d / "gap.ts")
    open(out["gap_ts"], "wb").write(gap)
    out["failed"] = str(d / "failed.mp4")
    damage_media_data(out["sound"], out["failed"], at=0.6, length=3000, pattern="random", seed=7)
    # a variable-rate MP4 whose only irregularity is one picture held 1.24 s (frames 100-130 dropped)
    out["held"] = str(d / "held.mp4")
    run_ffmpeg(["-i", out["sound"], "-vf", "select='not(between(n,100,130))'", "-fps_mode", "vfr",
                "-c:v", "libx264", "-g", "50", out["held"]])
    return out


def _damage_reference_picture(src: str, dst: str, at_s: float) -> None:
    """Overwrite a quarter of the first reference P-picture's packet from `at_s` on, a third of the way in:
    its NAL headers stay intact, so it decodes without an error, wrongly."""
    packets = _packets(src, reference=True)
    _, pos, length = next(p for p in packets if p[0] >= at_s)
    _overwrite(src, dst, pos + length // 3, length // 4)


def _damage_unreferenced_picture(src: str, dst: str, at_s: float) -> None:
    """Overwrite the second half of a non-reference B-picture's packet from `at_s` on such that the decoder
    flags the frame and nothing fails (random bytes may also parse as a valid picture, unflagged)."""
    import av

    for _, pos, length in sorted(_packets(src, reference=False), key=lambda p: (p[0] < at_s, -p[2]))[:20]:
        _overwrite(src, dst, pos + length // 2, length - length // 2)
        with av.open(dst) as c:
            try:
                if any(f.is_corrupt for f in c.decode(c.streams.video[0])):
                    return
            except av.error.FFmpegError:
                continue
    pytest.fail("no damaged non-reference picture is flagged")


def _packets(src: str, reference: bool) -> list[tuple[float, int, int]]:
    """(time, file offset, size) of the H.264 pictures that are (not) references, keyframes left out."""
    import av

    from vdata.media.cuts import _avc_length_size, _h264_reference

    with av.open(src) as c:
        s = c.streams.video[0]
        size = _avc_length_size(s.codec_context)
        return sorted((float(p.pts * p.time_base), p.pos, p.size) for p in c.demux(s)
                      if p.size and not p.is_keyframe and _h264_reference(memoryview(p), size) is reference)


def _overwrite(src: str, dst: str, at: int, length: int) -> None:
    data = bytearray(open(src, "rb").read())
    data[at:at + length] = random.Random(3).randbytes(length)
    open(dst, "wb").write(data)


def video_row(path):
    return {R.SOURCE_URI: path, R.PATH: path, R.VIDEO_ID: content_id(path), **probe_video(path)}


def shots(path, **cfg):
    return ShotsStage(ShotsConfig(**cfg), CTX).process_batch([video_row(path)])


def grey_frames(path) -> dict[float, np.ndarray]:
    """Every frame PyAV decodes, by its time from the stream's first frame (0.01 s), as grey images."""
    import av

    out = {}
    with av.open(path) as c:
        s = c.streams.video[0]
        start = float((s.start_time or 0) * s.time_base)
        for packet in c.demux(s):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:   # a packet that fails: its frame is missing
                continue
            for f in frames:
                out[round(float(f.time) - start, 2)] = f.to_ndarray(format="gray").astype(float)
    return out


def wrong_times(damaged: str, clean: str) -> list[float]:
    """Times of the clean video's frames that the damaged copy decodes wrongly or not at all (decoding is exact:
    a sound frame is the same picture)."""
    ref, got = grey_frames(clean), grey_frames(damaged)
    return [t for t in sorted(ref) if t not in got or np.abs(ref[t] - got[t]).mean() > 0.1]


def test_the_damage_is_concealed_not_raised(media):
    # the premise of F9: nothing fails to decode, the decoder only flags the frame it patched
    import av

    flagged = []
    with av.open(media["concealed"]) as c:
        for packet in c.demux(c.streams.video[0]):
            flagged += [f.time for f in packet.decode() if f.is_corrupt]   # an FFmpegError would fail the test
    assert flagged
    assert wrong_times(media["concealed"], media["sound"])


@pytest.mark.parametrize("name, cause", [("concealed", "the decoder concealed damage in 1 frame(s)"),
                                         ("gap_ts", "3 frame(s) missing from the stream")])
def test_damage_that_raises_nothing_rejects_the_video_corrupt(media, name, cause):
    out = shots(media[name])
    assert len(out) == 1 and isinstance(out[0], Reject), out
    rej = out[0]
    assert rej.reason == "corrupt" and cause in rej.message
    assert rej.detail["decode_errors"] == 0
    if name == "gap_ts":   # a gap of 4 frame intervals in an otherwise constant-rate stream
        assert rej.detail["missing_frames"] == 3 and rej.detail["concealed_frames"] == 0
    else:
        assert rej.detail["concealed_frames"] == 1 and rej.detail["missing_frames"] == 0
    # every frame that decodes wrongly or not at all lies in a damaged span that the message names
    spans = rej.detail["damaged_s"]
    clean = media["sound_ts"] if name.endswith("_ts") else media["sound"]
    wrong = wrong_times(media[name], clean)
    assert wrong and all(any(a - 1e-6 <= t < b for a, b in spans) for t in wrong), (wrong, spans)
    assert all(f"{a:.2f}-{b:.2f}s" in rej.message for a, b in spans)


@pytest.mark.parametrize("name", ["concealed", "gap_ts", "lossy_ts", "failed"])
def test_keep_clean_keeps_the_clean_clips_on_both_sides_of_the_damage(media, name):
    out = shots(media[name], on_corrupt="keep_clean", min_len_s=0.0)
    kept = [r for r in out if not isinstance(r, Reject)]
    lost = [r for r in out if isinstance(r, Reject)]
    assert lost and all(r.reason == "corrupt" for r in lost)
    # clips on both sides of the damage are kept
    assert any(c[R.END_S] <= lost[0].row[R.START_S] + 1e-6 for c in kept)
    assert any(c[R.START_S] >= lost[-1].row[R.END_S] - 1e-6 for c in kept)
    # kept clips and damaged spans tile the video, in frames and in time
    rows = sorted([c for c in kept] + [r.row for r in lost], key=lambda r: r[R.START_FRAME])
    assert rows[0][R.START_FRAME] == 0 and rows[0][R.START_S] == pytest.approx(0.0, abs=1e-6)
    assert all(a[R.END_FRAME] == b[R.START_FRAME] for a, b in zip(rows, rows[1:]))
    assert all(a[R.END_S] == pytest.approx(b[R.START_S], abs=1e-6) for a, b in zip(rows, rows[1:]))
    assert rows[-1][R.END_S] == pytest.approx(10.0, abs=0.05)
    # no kept clip holds a frame that decodes wrongly or not at all; each damaged span says where it is
    clean = media["sound_ts"] if name.endswith("_ts") else media["sound"]
    wrong = wrong_times(media[name], clean)
    assert wrong
    for t in wrong:
        assert not any(c[R.START_S] - 1e-6 <= t < c[R.END_S] - 1e-6 for c in kept), (t, [r.detail for r in lost])
    for r in lost:
        a, b = r.detail["lost_frames"]
        assert (r.row[R.START_FRAME], r.row[R.END_FRAME]) == (a, b)
        assert f"frames {a}-{b} ({r.row[R.START_S]:.2f}-{r.row[R.END_S]:.2f}s) are damaged" in r.message
    assert all(c[R.MEDIA_DAMAGE] and "corrupt" in c[R.MEDIA_DAMAGE] for c in kept)


def test_the_damaged_span_ends_where_decoding_recovers(media):
    # F10: packets fail around 6 s; decoding recovers at the next keyframe (every 50 frames), not at the end
    rej = shots(media["failed"])[0]
    assert isinstance(rej, Reject) and rej.reason == "corrupt"
    assert "decoding recovers at the keyframe at" in rej.message and "are lost" not in rej.message, rej.message
    assert rej.detail["decode_errors"] >= 1
    (start, end), = rej.detail["damaged_s"]
    assert end < 10.0 - 1.0 and round(end * FPS) % 50 == 0, rej.message
    assert f"decoding recovers at the keyframe at {end:.2f}s" in rej.message
    # the claim holds: every frame from there on decodes exactly as in the undamaged video ...
    wrong = wrong_times(media["failed"], media["sound"])
    assert wrong and all(start - 1e-6 <= t < end for t in wrong), (wrong, start, end)
    # ... and keep_prefix, which still drops them, says so
    out = shots(media["failed"], on_corrupt="keep_prefix", min_len_s=0.0)
    last = [r for r in out if isinstance(r, Reject)][-1]
    assert last.detail["lost_frames"][1] == FRAMES and last.row[R.END_S] == pytest.approx(10.0, abs=0.05)
    assert f"the frames from {end:.2f}s on decode cleanly" in last.message


def test_damage_to_a_picture_nothing_is_predicted_from_is_that_frame_alone(media):
    # a non-reference B-picture: the coarse pass skips it (a limit: the default scan does not decode it); a
    # pass over every frame sees the decoder's flag, and the damaged span is that one frame, not its GOP
    out = shots(media["concealed_b"], on_corrupt="keep_clean", min_len_s=0.0, coarse_to_fine=False, backend="pyav")
    lost = [r for r in out if isinstance(r, Reject)]
    assert len(lost) == 1 and lost[0].reason == "corrupt", out
    a, b = lost[0].detail["lost_frames"]
    assert b == a + 1 and "are sound" in lost[0].message
    wrong = wrong_times(media["concealed_b"], media["sound"])
    assert wrong == [pytest.approx(lost[0].row[R.START_S], abs=0.01)]


@pytest.mark.parametrize("name", ["sound", "sound_ts", "held"])
def test_sound_media_is_not_damaged(media, name):
    # a transport stream's start offset, a variable-rate MP4 holding one picture 1.24 s in an otherwise
    # constant-rate stream: neither is damage
    out = shots(media[name], min_len_s=0.0)
    assert out and all(isinstance(c, dict) and c[R.MEDIA_DAMAGE] is None for c in out), out
    assert out[-1][R.END_S] == pytest.approx(10.0, abs=0.05)


def test_lost_frame_gaps_only_in_constant_rate_streams():
    from vdata.stages.shots.damage import lost_frame_gaps

    steady = np.arange(100) / FPS
    gapped = np.concatenate([steady[:50], steady[54:]])   # 3 frames lost
    assert list(lost_frame_gaps(gapped)[0]) == [50]
    assert len(lost_frame_gaps(steady)[0]) == 0
    # a screen recording: pictures held for many different lengths
    held = np.cumsum(np.random.default_rng(0).choice([1, 1, 1, 2, 3, 5, 40], size=100)) / 30
    assert len(lost_frame_gaps(held)[0]) == 0


@pytest.mark.parametrize("ext", ["ts", "flv"])
def test_a_clean_recording_that_holds_pictures_in_a_stream_with_its_own_clock_is_not_damage(media, tmp_path, ext):
    """A screen recorder's held pictures, a paused capture and an encoder that skipped frames under load leave
    timestamp gaps in a TS or FLV as lost packets do, but every frame after them decodes clean: such files were
    rejected corrupt (outside check h22). A gap is loss only where the TS's continuity counters or the decoder say so."""
    held = str(tmp_path / f"held.{ext}")
    # motion for the first second of every 3 s, then one picture a second; then a 1.5 s pause
    run_ffmpeg(["-i", media["sound"], "-vf", "select='(lt(mod(t,3),1)+eq(mod(n,25),0))*not(between(t,7,8.5))',"
                "setpts=PTS", "-fps_mode", "vfr", "-c:v", "libx264", "-bf", "0", "-an", held])
    out = shots(held)
    assert not [r for r in out if isinstance(r, Reject) and r.reason in ("corrupt", "truncated")], \
        [(r.reason, r.message) for r in out if isinstance(r, Reject)]
    assert all(r[R.MEDIA_DAMAGE] is None for r in out if not isinstance(r, Reject))


def test_m2ts_packets_and_ts_files_joined_with_cat_are_not_damage(media, tmp_path):
    """192-byte M2TS packets (AVCHD, Blu-ray) read as 188-byte ones gave false continuity breaks, and TS
    recordings joined with `cat` restart their counters where the timeline jumps: both were rejected corrupt
    (outside check h22). A gap after which a keyframe starts afresh is a join, not loss."""
    m2ts = str(tmp_path / "camera.m2ts")
    held = str(tmp_path / "held.mp4")
    run_ffmpeg(["-i", media["sound"], "-vf", "select='not(between(t,4,5.5))',setpts=PTS", "-fps_mode", "vfr",
                "-c:v", "libx264", "-bf", "0", "-an", held])
    run_ffmpeg(["-i", held, "-c", "copy", "-f", "mpegts", "-mpegts_m2ts_mode", "1", m2ts])
    assert os.path.getsize(m2ts) % 192 == 0
    parts = []
    for k, (start, length) in enumerate([(0.0, 4.0), (6.0, 4.0)]):   # two recordings, the timeline jumps 2 s
        part = str(tmp_path / f"part{k}.ts")
        run_ffmpeg(["-ss", str(start), "-t", str(length), "-i", media["sound"], "-c:v", "libx264", "-an",
                    "-output_ts_offset", str(start), part])
        parts.append(part)
    joined = str(tmp_path / "joined.ts")
    with open(joined, "wb") as out:
        for part in parts:
            out.write(open(part, "rb").read())
    for path in (m2ts, joined):
        out = shots(path)
        assert not [r for r in out if isinstance(r, Reject) and r.reason in ("corrupt", "truncated")], \
            (path, [(r.reason, r.message) for r in out if isinstance(r, Reject)])


def test_a_stream_cut_mid_gop_says_its_undecoded_frames_lead_not_that_decoding_stopped(media, tmp_path):
    """A TS recording started mid-programme (cut at a packet boundary): its first pictures need references
    before the cut. The message said "decoding stopped early ... frames 23-69 (2.80-2.80s) are lost", a span of
    nothing at the end (outside check h22)."""
    data = open(media["sound_ts"], "rb").read()
    cut = str(tmp_path / "cut.ts")
    at = (len(data) // 3 // 188 + 5) * 188   # a third in, a few packets past a boundary: inside a GOP
    open(cut, "wb").write(data[at:])
    out = shots(cut)
    rej = [r for r in out if isinstance(r, Reject)]
    assert rej and rej[0].reason == "truncated", [(r.reason, r.message) for r in rej]
    assert "stopped early" not in rej[0].message and "are not at its end" in rej[0].message, rej[0].message
