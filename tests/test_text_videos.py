"""Text rendered as video (T2Vid / T3 sources): real H.264 files decoded back and read by OCR."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import no_ray
from vdata.haystack.verify import text_similarity
from vdata.media import MediaError
from vdata.media.probe import probe_video
from vdata.media.reader import open_reader
from vdata.media.text_frames import render_text_image, render_text_video, sidecar_path, split_text, text_units
from vdata.media.text_videos import write_text_videos
from vdata.schemas import records as R

from test_recipes import check_release_format

CHUNKS = ["The lighthouse keeper climbed the stairs at dawn.",
          "A green boat sailed past the harbour wall.",
          "Rain began to fall before the market opened."]


@pytest.fixture(scope="module")
def ocr():
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def test_split_text_keeps_order_and_bounds():
    text = " ".join(CHUNKS) + " " + " ".join(f"w{i}" for i in range(25))
    chunks = split_text(text, max_words=10)
    assert all(len(c.split()) <= 10 for c in chunks)
    assert " ".join(chunks).split() == text.split()          # nothing lost, nothing reordered
    assert chunks[0] == CHUNKS[0]                             # a sentence that fits stays whole


def test_rendered_chunks_decode_and_read_back(tmp_path, ocr):
    path = str(tmp_path / "story.mp4")
    sidecar = render_text_video(path, CHUNKS, seconds_per_chunk=1.5, size=(480, 270), fps=4)
    info = probe_video(path)
    assert info["duration_s"] == pytest.approx(4.5, abs=0.3)
    with open(sidecar_path(path), encoding="utf-8") as f:
        assert json.load(f) == sidecar
    spans = [(c["start_s"], c["end_s"]) for c in sidecar["chunks"]]
    assert spans == [(0.0, 1.5), (1.5, 3.0), (3.0, 4.5)]
    middles = [(a + b) / 2 for a, b in spans]
    with open_reader(path) as reader:
        frames = reader.read_at(middles)
    for (_, frame), expected, other in zip(frames, CHUNKS, CHUNKS[1:] + CHUNKS[:1]):
        result, _ = ocr(frame)
        found = " ".join(text for _, text, _ in result or [])
        assert text_similarity(expected, found) >= 0.9, (expected, found)   # OCR drops spaces, may miss a letter
        assert text_similarity(other, found) < 0.6, (other, found)          # another chunk is not on screen


def test_bad_text_is_refused_with_a_reason(tmp_path):
    with pytest.raises(MediaError) as e:
        render_text_video(str(tmp_path / "a.mp4"), [])
    assert e.value.reason == "no_text"
    with pytest.raises(MediaError) as e:
        render_text_video(str(tmp_path / "b.mp4"), ["word " * 2000], size=(160, 90))
    assert e.value.reason == "text_too_long"
    assert not list(tmp_path.iterdir())                                  # no half file left behind


# Lao is written without spaces between words, and the bundled DejaVu Sans draws it: a real script whose
# lines can only break between characters. ("Lao is the language used in Laos", three times.)
LAO = "ພາສາລາວເປັນພາສາທີ່ໃຊ້ໃນປະເທດລາວ" * 3
CHINESE = "今天天气很好。我们去公园散步吧！我用iPhone拍了很多照片，「真漂亮」。"


def test_split_text_cuts_unspaced_scripts_between_characters():
    """Chinese has no spaces: split by words it was one 'word' that fit no frame (`text_too_long`). Cut
    between characters, a chunk ends at 。 or ！ where one fits, a Latin word inside stays whole and no
    chunk starts with closing punctuation."""
    chunks = split_text(CHINESE, max_words=10)
    assert "".join(chunks) == CHINESE                                      # nothing lost, nothing reordered
    assert chunks[:2] == ["今天天气很好。", "我们去公园散步吧！"]               # each sentence fits: kept whole
    assert all(len(text_units(c)) <= 10 for c in chunks) and len(chunks) == 4
    assert any("iPhone" in c for c in chunks)
    assert not any(c[0] in "。，！」" for c in chunks)
    # mixed text keeps its spaces where it had them
    assert split_text("Hello world. 你好世界。", max_words=40) == ["Hello world. 你好世界。"]


def test_unspaced_text_wraps_between_characters_when_drawn():
    image = render_text_image(LAO, (320, 180))      # one 93-character "word": refused as text_too_long before
    ink = np.asarray(image.convert("L")) < 128
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert rows[-1] - rows[0] > 2 * 28                                     # more than two lines of text
    margin = int(320 * 0.06)
    assert cols[0] >= margin - 2 and cols[-1] <= 320 - margin + 2          # every line inside the frame


def test_text_the_font_has_no_glyphs_for_is_refused_not_drawn_as_boxes(tmp_path):
    """DejaVu Sans has no Chinese: a picture of empty boxes would pass for the record's text."""
    with pytest.raises(MediaError) as e:
        render_text_video(str(tmp_path / "zh.mp4"), ["A caption.", "Mixed text with one 字 in it."])
    assert e.value.reason == "font_lacks_glyphs"
    assert "DejaVuSans.ttf" in e.value.message and "U+5B57" in e.value.message
    assert not list(tmp_path.iterdir())                                    # no video, no sidecar
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [
        {"id": "zh", "text": CHINESE, "question": "天气怎么样？", "answer": "很好。"},
        {"id": "lao", "text": LAO}]), encoding="utf-8")
    counts = write_text_videos(str(records), str(tmp_path / "out"), seconds_per_chunk=1.0)
    assert counts == {"videos": 1, "rejects": 1}
    (reject,) = [json.loads(x) for x in (tmp_path / "out" / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert (reject["id"], reject["reason"]) == ("zh", "font_lacks_glyphs") and "'今'" in reject["message"]
    assert not (tmp_path / "out" / "zh.mp4").exists() and (tmp_path / "out" / "lao.mp4").exists()


def test_records_file_with_a_bom_and_crlf_line_ends(tmp_path):
    """Windows editors save JSONL with a BOM and CRLF: the first record is read, not `bad_json`, and a
    line that is not UTF-8 is one reject while the others go on."""
    records = tmp_path / "records.jsonl"
    records.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join([
        json.dumps({"id": "first", "text": "One two three.", "question": "Q?", "answer": "A."}).encode(),
        b'{"id": "latin1", "text": "caf\xe9"}',
        json.dumps({"id": "second", "chunks": ["a caption"]}).encode()]) + b"\r\n")
    counts = write_text_videos(str(records), str(tmp_path / "out"), seconds_per_chunk=1.0)
    rejects = [json.loads(x) for x in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [(2, "bad_encoding")] and counts["videos"] == 2
    rows = [json.loads(x) for x in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["first", "second"] and rows[0]["answer"] == "A."


# --- records -> videos + manifest, and the t2vid / t3 recipes built on them ---------------------------------

RECIPES = Path(__file__).resolve().parents[1] / "configs" / "recipes"
TEXT_EXAMPLES = RECIPES.parents[1] / "examples" / "recipes" / "text"


def test_records_become_videos_a_manifest_and_rejects_with_reasons(tmp_path):
    records = tmp_path / "records.jsonl"
    records.write_text("\n".join([
        json.dumps({"id": "ok", "text": "One two three. Four five six seven.", "question": "Q?", "answer": "A."}),
        "{not json",
        json.dumps({"id": "half", "text": "Some text.", "question": "Q?"}),
        json.dumps({"id": "../escape", "text": "x", "question": "Q?", "answer": "A"}),
        json.dumps({"id": "empty", "text": "  "}),
        json.dumps({"id": "ok", "chunks": ["again"]}),
        json.dumps({"id": "seq", "chunks": ["first caption", "second caption"]}),
    ]) + "\n")
    counts = write_text_videos(str(records), str(tmp_path / "out"), max_words=4, seconds_per_chunk=1.0)
    assert counts == {"videos": 2, "rejects": 5}
    rejects = [json.loads(x) for x in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (2, "bad_json"), (3, "qa_incomplete"), (4, "bad_record"), (5, "no_text"), (6, "duplicate_id")]
    rows = [json.loads(x) for x in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["ok", "seq"]
    assert rows[0]["question"] == "Q?" and rows[0]["answer"] == "A."
    assert [s["text"] for s in rows[0]["segments"]] == ["One two three.", "Four five six seven."]
    assert [(s["start_s"], s["end_s"]) for s in rows[1]["segments"]] == [(0.0, 1.0), (1.0, 2.0)]
    assert probe_video(str(tmp_path / "out" / rows[1]["path"]))["duration_s"] == pytest.approx(2.0, abs=0.3)


def _config(name: str, tmp_path: Path, drop: tuple[str, str] | None = None) -> Path:
    """The recipe on its shipped rendered examples (`drop`: (id, key) removed from that manifest row)."""
    data = yaml.safe_load((RECIPES / f"{name}.yaml").read_text())
    assert not data.get("teachers")
    rows = [json.loads(x) for x in (TEXT_EXAMPLES / name / "manifest.jsonl").read_text().splitlines()]
    for r in rows:
        r["path"] = str(TEXT_EXAMPLES / name / r["path"])
        if drop and r["id"] == drop[0]:
            del r[drop[1]]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data["input"] = [{"manifest": str(tmp_path / "manifest.jsonl")}]
    data["output"]["dir"] = str(tmp_path / "out")
    data["output"]["mode"] = "overwrite"     # a second build starts from nothing, into the same folder
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


def _build(name: str, tmp_path: Path, drop: tuple[str, str] | None = None) -> tuple[list[dict], dict]:
    import pyarrow.dataset as pads

    from vdata.pipelines.runner import build
    from vdata.schemas.config import load_config

    result = build(load_config(_config(name, tmp_path, drop)), progress=False)
    assert result.rows > 0, result.rejects_by_reason
    assert check_release_format("llava", tmp_path / "out" / "exports" / "llava") > 0
    return (pads.dataset(str(tmp_path / "out" / "samples"), format="parquet").to_table().to_pylist(),
            result.rejects_by_reason)


def test_t2vid_recipe_keeps_each_records_qa(tmp_path, in_process):
    records = {r["id"]: r for r in map(json.loads, (TEXT_EXAMPLES / "t2vid_records.jsonl").read_text().splitlines())}
    samples, rejects = _build("t2vid", tmp_path, drop=("garden_notes", "answer"))
    kept = {s[R.PATH].rsplit("/", 1)[-1][:-4]: s for s in samples}
    assert set(kept) == {"harbour_story"}                       # garden_notes lost its answer in the manifest
    assert rejects == {"generate:missing_annotation": 1}, rejects          # a reject with its reason
    for rid, s in kept.items():
        assert (s[R.QUESTION], s[R.ANSWER]) == (records[rid]["question"], records[rid]["answer"])
        assert s[R.TASK] == "open_qa" and s[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO


@pytest.fixture(scope="module")
def built_twice(tmp_path_factory):
    """A teacher-free text recipe on its shipped examples, built twice into one folder, once per module:
    name -> [(samples, rejects_by_reason, (sorted samples, exported bytes))] for the two builds. The answer
    checks read the second build, the byte-identical check compares the two."""
    from test_recipes import samples_and_exports

    builds: dict[str, list] = {}

    def get(name: str) -> list:
        if name not in builds:
            no_ray()   # built in process, as a fresh `vdata build` of a few videos runs
            tmp_path = tmp_path_factory.mktemp(name)
            builds[name] = [(*_build(name, tmp_path), samples_and_exports(tmp_path / "out")) for _ in range(2)]
        return builds[name]

    return get


def test_t3_recipe_asks_order_answered_by_the_caption_sequence(built_twice):
    sequences = {r["id"]: [c.rstrip(".") for c in r["chunks"]]
                 for r in map(json.loads, (TEXT_EXAMPLES / "t3_captions.jsonl").read_text().splitlines())}
    samples, _, _ = built_twice("t3")[-1]
    samples = [s for s in samples if s[R.QUESTION_TYPE] == "order"]
    assert len(samples) == 9                                              # per_clip 3 on each of 3 videos
    for s in samples:
        order = sequences[s[R.PATH].rsplit("/", 1)[-1][:-4]]
        a, b = sorted(s[R.OPTIONS], key=order.index)
        later = "later" in s[R.QUESTION] or "after" in s[R.QUESTION]
        assert s[R.ANSWER] == (b if later else a), s[R.QUESTION]
        assert s[R.OPTIONS][s[R.ANSWER_INDEX]] == s[R.ANSWER]


def test_t3_attribute_change_and_referring_are_answered_by_the_sequence(built_twice):
    """T3's other kinds on the shipped caption videos: the balloon (red, then blue, then yellow) gives
    attribute-change MCQs whose answer is the colour the captions give at that point; the sequences where
    no colour changes give a reject with its reason; every referring answer is the caption right after
    (before) the one quoted."""
    from vdata.stages.generate.t3_tasks import COLOURS

    sequences = {r["id"]: [c.rstrip(".") for c in r["chunks"]]
                 for r in map(json.loads, (TEXT_EXAMPLES / "t3_captions.jsonl").read_text().splitlines())}
    samples, rejects, _ = built_twice("t3")[-1]
    attribute = [s for s in samples if s[R.QUESTION_TYPE] == "attribute_change"]
    assert {s[R.PATH].rsplit("/", 1)[-1][:-4] for s in attribute} == {"balloon_sequence"}
    assert len(attribute) == 3 and rejects.get("generate:missing_annotation") == 2, rejects   # kitchen, park
    balloon = {"start": "red", "end": "yellow", "before it turned blue": "red", "before it turned yellow": "blue",
               "after being red": "blue", "after being blue": "yellow"}
    for s in attribute:
        assert s[R.TASK] == "mcq" and "balloon" in s[R.QUESTION] and s[R.OPTIONS][s[R.ANSWER_INDEX]] == s[R.ANSWER]
        (expected,) = [colour for key, colour in balloon.items() if key in s[R.QUESTION]]
        assert s[R.ANSWER] == expected, s[R.QUESTION]
        assert len(set(s[R.OPTIONS])) == 4 and set(s[R.OPTIONS]) <= set(COLOURS)
    referring = [s for s in samples if s[R.QUESTION_TYPE] == "temporal_referring"]
    assert len(referring) == 6                                            # per_clip 2 on each of 3 videos
    for s in referring:
        order = sequences[s[R.PATH].rsplit("/", 1)[-1][:-4]]
        anchor = s[R.QUESTION].split('"')[1]
        step = 1 if "right after" in s[R.QUESTION] else -1
        assert s[R.ANSWER] == order[order.index(anchor) + step], s[R.QUESTION]
        assert anchor not in s[R.OPTIONS] and len(set(s[R.OPTIONS])) == len(s[R.OPTIONS]) == 3
    assert any(s[R.TASK] == "segment_grounding" for s in samples)          # T3's grounding kind


@pytest.mark.parametrize("name", ["t2vid", "t3"])
def test_text_recipes_build_with_no_teacher_byte_identical_twice(name, built_twice):
    """Teacher-free like the annotation recipes of tests/test_recipes.py (TEACHER_FREE): built twice into
    the same folder, the samples and every exported byte are the same (T3's two builds are the ones its
    answer checks read)."""
    outs = [out for _, _, out in built_twice(name)]
    (samples_a, exports_a), (samples_b, exports_b) = outs
    assert samples_a and samples_a == samples_b
    assert exports_a and exports_a == exports_b


def test_attribute_change_follows_one_thing_never_two_that_share_a_noun():
    """T3's attribute questions follow one thing whose colour changes. Two cars ("A red car …", "A blue car …"),
    two teams told apart by colour, or two colours on one noun in one text are two things: no change to ask
    about (before, "the car" turned blue and back to red). A colour said of the thing is a change."""
    from vdata.stages.generate.t3_tasks import colour_changes

    def changes(*texts):
        return colour_changes([(2.0 * k, 2.0 * k + 2, t) for k, t in enumerate(texts)])

    assert changes("A red car waits at the light.", "A blue car passes it.", "The red car turns left.") == {}
    assert changes("The red team scores a goal.", "The blue team answers quickly.") == {}
    assert changes("A red car and a blue car wait.", "The car turns green.") == {}
    assert changes("A girl holds a red balloon.", "The balloon turns blue.", "The balloon turns yellow.") == \
        {"balloon": [(0, "red"), (1, "blue"), (2, "yellow")]}
    assert changes("The car is red.", "The car is now blue.") == {"car": [(0, "red"), (1, "blue")]}
    assert changes("A man paints a red door.", "He paints the door green.") == {"door": [(0, "red"), (1, "green")]}


def test_a_colour_the_thing_first_turns_into_is_not_its_colour_at_the_start():
    """Outside check h24 F16: "The door turns red in the sunset." as the door's first colour made "What colour is
    the door at the start of the video?" → red; the door was not red before it turned. A state ("a red door",
    "the door is red") still answers the start question."""
    from vdata.schemas import records as R
    from vdata.stages.base import RunContext
    from vdata.stages.generate import GenerateConfig, GenerateStage
    from vdata.stages.generate.t3_tasks import turned_into

    assert turned_into("The door turns red in the sunset.", "door", "red")
    assert turned_into("He paints the door green.", "door", "green")
    assert not turned_into("A man opens a red door.", "door", "red") and not turned_into("The door is red.", "door", "red")

    def questions(*texts):
        row = {R.CLIP_ID: "v1:video", R.VIDEO_ID: "v1", R.START_S: 0.0, R.END_S: 2.0 * len(texts),
               R.SAMPLE_SCOPE: R.SCOPE_VIDEO, R.ANNOTATIONS: {"segments": [
                   {"start_s": 2.0 * k, "end_s": 2.0 * k + 2, "text": t} for k, t in enumerate(texts)]}}
        stage = GenerateStage(GenerateConfig(tasks={"attribute_change": {"per_clip": 16}}), RunContext(output_dir=""))
        stage.setup()
        return {s[R.QUESTION]: s[R.ANSWER] for s in stage.process_batch([row]) if isinstance(s, dict)}

    turned = questions("A man named Mr. White opens the door.", "The door turns red in the sunset.",
                       "A dog barks at the door.", "The door turns orange at dusk.")
    assert "What colour is the door at the start of the video?" not in turned
    assert turned["What colour is the door at the end of the video?"] == "orange"
    stated = questions("A man opens a red door.", "The door turns orange at dusk.")
    assert stated["What colour is the door at the start of the video?"] == "red"
