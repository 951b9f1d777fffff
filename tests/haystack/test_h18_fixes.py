"""The h18 tester's findings, fixed: a needle the item names as absent but the footage shows (F1), media
names that spell the answer (F3), nested labels (F2), silent audio needles (F4), number words in speech
(F5), an object-storage output.dir (F14), an interrupted build's folder (F15), text nits (F9)."""
from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from vdata.haystack import build_haystack
from vdata.haystack.absent import check_speech, found_in
from vdata.haystack.config import load_haystack_config
from vdata.haystack.needles import load_needle_sets
from vdata.haystack.run import item_plans
from vdata.haystack.words import same_word, words
from vdata.media.synth import Segment, render_segments
from vdata.schemas.config import ConfigError


def _cfg(tmp_path: Path, haystack: dict, out: str | None = None, name: str = "h18") -> Path:
    spec = {"sources": {"glob": "videos/*.mp4"}, "lengths_s": [12], "size": [320, 180], "options": 2,
            "circular_eval": False, **haystack}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "output": {"dir": out or str(tmp_path / "out")}, "haystack": spec}))
    return path


@pytest.fixture(scope="module")
def fractal_footage(tmp_path_factory) -> Path:
    """A haystack whose footage shows the Mandelbrot at 0.2-1.0 s, and three clip needles, one of them a
    "fractal zoom" (the same Mandelbrot)."""
    root = tmp_path_factory.mktemp("h18")
    (root / "videos").mkdir()
    (root / "clips").mkdir()
    render_segments(str(root / "videos" / "leaky.mp4"),
                    [Segment("testsrc2", 0.2), Segment("mandelbrot", 0.8), Segment("testsrc2", 11.0)], size=(320, 180))
    for name, src in [("fractal_zoom", "mandelbrot"), ("sierpinski_carpet", "sierpinski=type=carpet:seed=3"),
                      ("rgb_card", "rgbtestsrc")]:
        render_segments(str(root / "clips" / f"{name}.mp4"), [Segment(src, 1.6)], size=(320, 180), crf=30)
    return root


def test_distractor_the_footage_shows_drops_the_item(fractal_footage):
    """F1: "fractal zoom" offered as a wrong option (retrieval) or asked about with count 0 (counting) while
    the footage shows it: the item has two true answers and is dropped as distractor_on_screen; no kept
    item names it at all (inserted, it is a leak; named as absent, it is on screen)."""
    path = _cfg(fractal_footage, {"needles": [{"type": "clip", "from": "clips/*.mp4"}],
                                  "tasks": ["retrieval", "counting"], "needles_per_item": [1], "items_per_cell": 4},
                out=str(fractal_footage / "out_f1"))
    plans = {p.item_id: p for p in item_plans(str(path))[3]}
    named = {i for i, p in plans.items() if any(a.needle.label == "fractal zoom" for a in p.absent)}
    assert named, "the plan names the fractal zoom as absent somewhere"
    result = build_haystack(str(path))
    assert result.rejected["distractor_on_screen"] >= 1, result.rejected
    rejects = pq.read_table(result.paths["rejects"]).to_pylist()
    for r in rejects:
        if r["reason"] == "distractor_on_screen":
            assert "'fractal zoom'" in r["message"] and "leaky.mp4 at 0." in r["message"], r["message"]
            assert r["sample_id"] in named
    for row in pq.read_table(result.paths["items"]).to_pylist():
        assert "fractal zoom" not in row["options"] and "fractal zoom" not in row["question"], row


def test_media_names_are_opaque_and_exports_join(tmp_path, fractal_footage):
    """F3: video files, zip members, lmms-eval videoID and the VLMEvalKit `video` column never spell the item
    id (task, length, depth); the item id stays a metadata column and every export finds its video."""
    import zipfile

    path = _cfg(fractal_footage, {"needles": [{"type": "clip", "from": "clips/*.mp4"}], "tasks": ["localization"],
                                  "needles_per_item": [1], "depths": [0.1, 0.9]},
                out=str(tmp_path / "out"), name="f3")
    result = build_haystack(str(path), verify=False)
    rows = pq.read_table(result.paths["items"]).to_pylist()
    assert rows and len({r["video_path"] for r in rows}) == len({r["item_id"] for r in rows})
    for r in rows:
        stem = Path(r["video_path"]).stem
        assert "localization" not in stem and "12s" not in stem and "d10" not in stem and "d90" not in stem
        assert (tmp_path / "out" / r["video_path"]).is_file()
    stems = {Path(r["video_path"]).stem for r in rows}
    lmms = Path(result.paths["lmms_eval"])
    mme = pq.read_table(lmms / "data" / "test-00000-of-00001.parquet").to_pylist()
    assert {m["videoID"] for m in mme} == stems and {m["item_id"] for m in mme} == {r["item_id"] for r in rows}
    assert all(m["sub_category"] == "1 needle" for m in mme)            # F9: not "1 needles"
    members = {n for z in lmms.glob("*.zip") for n in zipfile.ZipFile(z).namelist()}
    assert members == {f"{s}.mp4" for s in stems}
    tsv = Path(result.paths["vlmevalkit"]).read_text().splitlines()
    head = tsv[0].split("\t")
    for line in tsv[1:]:
        cells = dict(zip(head, line.split("\t")))
        assert cells["video"] in stems and "localization" not in cells["video"]
        assert (Path(result.paths["vlmevalkit"]).parent / cells["video_path"]).is_file()
        assert cells["item_id"].startswith("localization-")


def test_nested_labels_are_refused(tmp_path):
    """F2: "BLUE HORSE" is part of "BLUE HORSE RACE": a question about one is answered by the other."""
    path = _cfg(tmp_path, {"needles": [{"type": "text", "phrases": ["BLUE HORSE", "QUANTUM PICKLE", "BLUE HORSE RACE"]}],
                           "tasks": ["retrieval"], "needles_per_item": [1]})
    with pytest.raises(ConfigError) as e:
        load_needle_sets(load_haystack_config(path))
    msg = str(e.value)
    assert "haystack.needles[0]" in msg and "'BLUE HORSE'" in msg and "'BLUE HORSE RACE'" in msg
    ok = _cfg(tmp_path, {"needles": [{"type": "text", "phrases": ["BLUE HORSE", "BLUE HORSES", "HORSE BLUE"]}],
                         "tasks": ["retrieval"], "needles_per_item": [1]}, name="ok")
    assert len(load_needle_sets(load_haystack_config(ok))[0].needles) == 3   # whole words only


def _wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.astype("<i2").tobytes())


@pytest.mark.parametrize("samples", [np.zeros(0), np.zeros(16000)], ids=["empty", "silent"])
def test_empty_or_silent_audio_needle_is_refused(tmp_path, samples):
    """F4: a 0-second or all-silent WAV holds no phrase to hear: a config error naming the file."""
    (tmp_path / "speech").mkdir()
    _wav(tmp_path / "speech" / "empty.wav", samples)
    _wav(tmp_path / "speech" / "tone.wav", (8000 * np.sin(np.arange(16000) * 0.1)))
    path = _cfg(tmp_path, {"needles": [{"type": "audio", "from": "speech/*.wav"}], "tasks": ["retrieval"],
                           "needles_per_item": [1]})
    with pytest.raises(ConfigError) as e:
        load_needle_sets(load_haystack_config(path))
    assert "haystack.needles[0].from: empty.wav cannot be used" in str(e.value)


def test_number_words_match_digits():
    """F5: Whisper writes "forty" as "40": the speech check compares both as digits."""
    assert words("my grandmother baked forty pies") == ["my", "grandmother", "baked", "40", "pies"]
    assert words("the code is four thousand") == ["the", "code", "is", "4", "thousand"]
    assert words("three hundred and five, twenty-one, seven") == ["305", "21", "7"]
    assert same_word("40", "40") and not same_word("4", "40") and same_word("grandmother", "grandmothers")
    heard = words("my grandma make 40 pies")
    phrase = words("my grandmother baked forty pies")
    assert sum(any(same_word(p, h) for h in heard) for p in phrase) == 3   # was 2 of 5 (40%): needle_missing


def test_named_absent_text_and_speech_rules():
    """F1 for text and speech: a footage line holding the phrase (nearly contiguous) counts; scattered
    letters do not; a phrase counts as spoken when half its content words are heard."""
    assert found_in("BLUE HORSE", "the blue horse race", 0.8)
    assert not found_in("RED", "Rare Evening Dinner", 0.8)
    from types import SimpleNamespace as NS

    p = NS(kind="audio", role="distractor", needle=NS(needle_id="x", label="purple elephants dance at midnight"))
    assert not check_speech(p, words("and purple elephants were there"))["named_absent"]
    assert check_speech(p, words("nothing like it"))["named_absent"]


def test_object_storage_output_dir_is_a_config_error(tmp_path):
    """F14: an s3:// output.dir was half-written to a local folder named "s3:"."""
    path = _cfg(tmp_path, {"needles": [{"type": "text", "phrases": ["QUANTUM PICKLE", "MARBLE FALCON"]}],
                           "tasks": ["retrieval"], "needles_per_item": [1]}, out="s3://bkt/hay")
    with pytest.raises(ConfigError) as e:
        load_haystack_config(path)
    assert "output.dir" in str(e.value) and "local folder" in str(e.value)
    assert not (Path.cwd() / "s3:").exists()


def test_interrupted_build_folder_is_named_incomplete(tmp_path, fractal_footage):
    """F15: a build stopped mid-way leaves 4-byte tables; score and push say the folder is incomplete."""
    from vdata.exporters.source import UnfinishedBuild, open_build
    from vdata.haystack.scoring import score_predictions

    path = _cfg(fractal_footage, {"needles": [{"type": "text", "phrases": ["QUANTUM PICKLE", "MARBLE FALCON"]}],
                                  "tasks": ["retrieval"], "needles_per_item": [1]},
                out=str(tmp_path / "bench"), name="f15")
    result = build_haystack(str(path), render="manifest")
    bench = tmp_path / "bench"
    assert (bench / "run_report.json").is_file()
    open_build(str(bench))                                       # a finished folder opens
    (bench / "run_report.json").unlink()                          # as an interrupted build leaves it
    (bench / "items.parquet").write_bytes(b"PAR1")
    with pytest.raises(ValueError, match="incomplete .interrupted build.; run `vdata haystack build` again"):
        score_predictions(str(bench / "items.parquet"), {"x": "A"})
    with pytest.raises(UnfinishedBuild, match="incomplete"):
        open_build(str(bench))
    assert result.planned


def test_rebuild_report_counts_questions(tmp_path, fractal_footage):
    """F9: `vdata haystack rebuild` wrote run_report.json with "questions": 0."""
    from vdata.haystack import rebuild_haystack

    path = _cfg(fractal_footage, {"needles": [{"type": "clip", "from": "clips/*.mp4"}], "tasks": ["retrieval"],
                                  "needles_per_item": [1], "options": 2, "circular_eval": True},
                out=str(tmp_path / "bench"), name="f9")
    built = build_haystack(str(path), verify=False, limit=1)
    again = rebuild_haystack(str(tmp_path / "bench"), [str(fractal_footage)], out_dir=str(tmp_path / "re"))
    report = json.loads((tmp_path / "re" / "run_report.json").read_text())
    assert report["questions"] == built.questions == 2 and again.reproduction["bytes"] + again.reproduction["frames"] == 1


def test_build_where_every_item_fails_exits_non_zero(tmp_path, fractal_footage, monkeypatch):
    """F14: "0 items, 0 questions" with exit 0 hid a build whose every item failed to render."""
    from click.testing import CliRunner

    from vdata.haystack.cli import haystack_cmd
    from vdata.haystack.render import Renderer
    from vdata.media import MediaError

    def broken(self, base_path, placements, out_path):
        raise MediaError("ffmpeg_failed", "ffmpeg failed: Protocol not found")

    monkeypatch.setattr(Renderer, "render_item", broken)
    path = _cfg(fractal_footage, {"needles": [{"type": "clip", "from": "clips/*.mp4"}], "tasks": ["retrieval"],
                                  "needles_per_item": [1]}, out=str(tmp_path / "o"), name="f14")
    res = CliRunner().invoke(haystack_cmd, ["build", str(path), "--limit", "1", "--quiet"])
    assert res.exit_code == 1 and "none of the 1 planned item(s) was kept" in res.output, res.output


def test_text_the_footage_shows_is_found_by_ocr(tmp_path):
    """F1 for text: footage showing "MARBLE FALCON" makes that phrase on screen when an item names it absent."""
    import subprocess
    from types import SimpleNamespace as NS

    from PIL import Image, ImageDraw, ImageFont

    from vdata.haystack.absent import check_text, footage_text
    from vdata.haystack.config import VerifySpec
    from vdata.haystack.verify import Verifier
    from vdata.media.ffmpeg import ffmpeg_exe
    from vdata.media.synth import bundled_font

    im = Image.new("RGB", (320, 180), (30, 60, 90))
    ImageDraw.Draw(im).text((20, 70), "MARBLE FALCON", font=ImageFont.truetype(bundled_font(bold=True), 28),
                            fill=(255, 255, 255))
    im.save(tmp_path / "t.png")
    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-loop", "1", "-i", str(tmp_path / "t.png"), "-t", "3", "-r", "25",
                    "-pix_fmt", "yuv420p", str(tmp_path / "t.mp4")], check=True)
    v = Verifier(VerifySpec(), 25.0)
    lines = footage_text(v, str(tmp_path / "t.mp4"), 3.0)
    assert len(lines) == 3

    def named(label):
        return NS(kind="text", role="distractor", needle=NS(needle_id=label, label=label))

    hit = check_text(v, named("MARBLE FALCON"), lines, None)
    assert not hit["named_absent"] and "OCR reads" in hit["message"] and hit["seen_at_s"] < 1
    assert check_text(v, named("QUANTUM PICKLE"), lines, None)["named_absent"]


def test_animated_images_are_refused_and_16_bit_pictures_are_seen_as_ffmpeg_shows_them(tmp_path):
    """F18: an animated GIF passed the load and failed every render (`-loop 1` loops one still picture); a 16-bit
    grey PNG rendered right but its reference, PIL's convert("RGB"), came out white: 'not on screen' each time."""
    import subprocess

    import imageio_ffmpeg
    from PIL import Image

    from vdata.media.images import rgb8

    (tmp_path / "img").mkdir()
    frames = [Image.new("RGB", (64, 48), c) for c in ("red", "yellow", "green")]
    frames[0].save(tmp_path / "img" / "traffic_light.gif", save_all=True, append_images=frames[1:], duration=200)
    Image.new("RGB", (64, 48), "navy").save(tmp_path / "img" / "navy_box.png")
    path = _cfg(tmp_path, {"needles": [{"type": "image", "from": "img/*"}], "tasks": ["retrieval"],
                           "needles_per_item": [1]})
    with pytest.raises(ConfigError) as e:
        load_needle_sets(load_haystack_config(path))
    assert "traffic_light.gif" in str(e.value) and "animated image (3 frames)" in str(e.value)
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (32, 1))
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    with Image.open(tmp_path / "ramp16.png") as im:
        seen = rgb8(im)
    # what ffmpeg makes of the same file (the renderer's view)
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "ramp16.png"),
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    shown = np.frombuffer(raw, np.uint8).reshape(32, 256, 3)
    assert seen.dtype == np.uint8 and seen.shape == (32, 256, 3)
    assert abs(float(seen.mean()) - float(shown.mean())) < 2 and np.abs(seen.astype(int) - shown).max() <= 2
