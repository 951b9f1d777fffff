"""entities stage: one consistent name per repeated character or object across the clips of a video.

Hand-written clip rows (captions mentioning "a man in a red shirt" / "the man in the red shirt" / "a dog"
across clips, a transcript saying "Tom") check the rules: one name per entity, the table's clips and
evidence, the renamed captions, determinism, a captionless row passing through and the Arrow types of the
written columns. The last test runs a real narrated video (espeak-ng speech over hard cuts) through
probe → shots → asr (Whisper tiny.en) and takes the spoken names from the real transcript.
"""
from __future__ import annotations

import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vdata.schemas import records as R
from vdata.schemas.registry import stage_class
from vdata.stages.entities import EntitiesConfig, EntitiesStage, caption_mentions, spoken_names

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples", "videos")


def _rows() -> list[dict]:
    clip = lambda k, start, caption, said: {R.SOURCE_URI: "v.mp4", R.VIDEO_ID: "v", R.CLIP_ID: f"v:{k}",
                                            R.START_S: start, R.CAPTION: caption, R.TRANSCRIPT_TEXT: said}
    # given out of time order on purpose: the stage sorts a video's clips by start
    return [
        clip(2, 9.0, "The man sits on a bench while a woman wearing a blue hat waves.", ""),
        clip(0, 0.0, "A man in a red shirt walks a dog along the street.", "This is Tom. Say hello to Tom."),
        clip(1, 5.0, "The man in the red shirt throws a ball. A dog runs after it.", "Good boy, fetch!"),
        clip(3, 12.0, None, None),
        {R.SOURCE_URI: "w.mp4", R.VIDEO_ID: "w", R.CLIP_ID: "w:0", R.START_S: 0.0,
         R.CAPTION: "A man in a red shirt waves.", R.TRANSCRIPT_TEXT: "Hello from Ben."},
    ]


def _run(rows, **config) -> dict[str, dict]:
    stage = EntitiesStage(EntitiesConfig(**config))
    stage.setup()
    return {r[R.CLIP_ID]: r for r in stage.process_batch([dict(r) for r in rows])}


def test_mentions_and_spoken_names():
    found = caption_mentions("c", "A man in a red shirt walks a dog into the kitchen.")
    assert [(m.text, m.head, m.attrs) for m in found] == [
        ("A man in a red shirt", "man", ("red", "shirt")), ("a dog", "dog", ()), ("the kitchen", "kitchen", ())]
    # "in the kitchen" is a place, not an appearance: the man stays bare
    assert caption_mentions("c", "The man in the kitchen cooks.")[0].attrs == ()
    names = spoken_names({"a": "Maria bakes bread. Look at this.", "b": "Her brother Tom sells it. Now look!",
                          "c": "Good morning, Oliver."})
    assert names == {"a": ["Maria"], "b": ["Tom"], "c": ["Oliver"]}   # "Look": also said in lowercase


def test_one_consistent_name_per_entity_across_clips():
    out = _run(_rows())
    table = out["v:0"][R.ENTITIES]
    by_name = {e["name"]: e for e in table}
    assert set(by_name) == {"Tom", "the dog"}        # woman and street: one clip each, no spoken name
    tom, dog = by_name["Tom"], by_name["the dog"]
    assert tom["kind"] == "person" and tom["clip_ids"] == ["v:0", "v:1", "v:2"]
    assert tom["aliases"] == ["A man in a red shirt", "The man in the red shirt", "The man"]
    assert {"clip_id": "v:0", "source": "transcript", "text": "Tom"} in tom["evidence"]
    assert [e["clip_id"] for e in tom["evidence"] if e["source"] == "caption"] == ["v:0", "v:1", "v:2"]
    assert dog["kind"] == "animal" and dog["clip_ids"] == ["v:0", "v:1"]
    assert out["v:0"][R.CAPTION_RENAMED] == "Tom walks the dog along the street."
    assert out["v:1"][R.CAPTION_RENAMED] == "Tom throws a ball. The dog runs after it."
    assert out["v:2"][R.CAPTION_RENAMED] == "Tom sits on a bench while a woman wearing a blue hat waves."
    assert all(out[c][R.ENTITIES] == table for c in ("v:1", "v:2", "v:3"))   # every clip row of the video
    # the other video is its own world: Ben is not Tom, and one clip names him from its own speech
    assert [e["name"] for e in out["w:0"][R.ENTITIES]] == ["Ben"]
    assert out["w:0"][R.CAPTION_RENAMED] == "Ben waves."


def test_captionless_row_passes_through_and_runs_are_deterministic():
    first, second = _run(_rows()), _run(list(reversed(_rows())))
    assert first == second
    empty = first["v:3"]
    assert empty[R.CAPTION] is None and empty[R.CAPTION_RENAMED] is None and empty[R.ENTITIES]


def test_numbered_naming_without_speech_and_min_clips():
    out = _run(_rows(), naming="numbered", spoken_names=False)
    assert [e["name"] for e in out["v:0"][R.ENTITIES]] == ["Person 1", "Dog 1"]
    assert out["v:1"][R.CAPTION_RENAMED] == "Person 1 throws a ball. Dog 1 runs after it."
    assert out["v:1"][R.CAPTION] == _rows()[2][R.CAPTION]                 # the caption itself is kept ...
    applied = _run(_rows(), naming="numbered", spoken_names=False, apply_to_caption=True)
    assert applied["v:1"][R.CAPTION] == "Person 1 throws a ball. Dog 1 runs after it."   # ... unless applied
    assert applied["v:3"][R.CAPTION] is None
    every = _run(_rows(), naming="numbered", spoken_names=False, min_clips=1)
    names = [e["name"] for e in every["v:0"][R.ENTITIES]]
    assert "Person 2" in names and "Ball 1" in names      # the woman, and the one-clip objects
    assert every["v:2"][R.CAPTION_RENAMED].endswith("while Person 2 waves.")


def test_written_columns_match_the_schema_and_the_stage_is_registered(tmp_path):
    assert stage_class("entities") is EntitiesStage
    assert EntitiesStage.writes == (R.ENTITIES, R.CAPTION_RENAMED) and EntitiesStage.group_by == R.SOURCE_URI
    out = list(_run(_rows()).values())
    schema = pa.schema([(c, R.FIELD_TYPES[c]) for c in (R.CLIP_ID, *EntitiesStage.writes)])
    table = pa.Table.from_pylist([{c: r[c] for c in schema.names} for r in out], schema=schema)
    assert table.num_rows == 5 and table.column(R.ENTITIES).type == R.FIELD_TYPES[R.ENTITIES]
    pq.write_table(table, tmp_path / "entities.parquet")   # the nested table survives Parquet as it is
    back = pq.read_table(tmp_path / "entities.parquet")
    assert back.schema.equals(schema) and back.to_pylist() == table.to_pylist()
    with pytest.raises(ValueError):
        EntitiesConfig(naming="random")


@pytest.mark.slow
def test_narrated_video_names_come_from_real_speech(tmp_path):
    """bakery: "Maria bakes three loaves…" | "Her brother Tom sells the bread…" | "The market stays open…"."""
    from vdata.stages.asr import AsrConfig, AsrStage
    from vdata.stages.probe import ProbeStage
    from vdata.stages.shots import ShotsStage

    path = str(tmp_path / "narrated_bakery.mp4")
    shutil.copy(os.path.join(EXAMPLES, "narrated_bakery.mp4"), path)
    rows = [{R.SOURCE_URI: path, R.PATH: path, R.SOURCE_META: None, R.MASS: 1.0}]
    for stage in (ProbeStage(), ShotsStage(min_len_s=1.0), AsrStage(AsrConfig(model="tiny.en", cpu_threads=2))):
        stage.setup()
        rows = [r for r in stage.process_batch(rows) if isinstance(r, dict)]
    rows.sort(key=lambda r: r[R.START_S])
    assert len(rows) == 3, [r[R.TRANSCRIPT_TEXT] for r in rows]
    captions = ["A woman in a white apron kneads dough.",                      # what a captioner would say
                "The woman in the white apron hands bread to a man in a green shirt.",
                "The man in the green shirt closes the stall."]
    for row, caption in zip(rows, captions):
        row[R.CAPTION] = caption
    out = {r[R.CLIP_ID]: r for r in EntitiesStage().process_batch(rows)}
    ids = [r[R.CLIP_ID] for r in rows]
    by_name = {e["name"]: e for e in out[ids[0]][R.ENTITIES]}
    woman, man = by_name["Maria"], by_name["Tom"]
    assert woman["clip_ids"] == ids[:2] and "Maria" in rows[0][R.TRANSCRIPT_TEXT]
    assert man["clip_ids"] == ids[1:] and "Tom" in rows[1][R.TRANSCRIPT_TEXT]
    # said, not captioned: "the market" is heard in the last two clips, one object with transcript evidence
    market = by_name["the market"]
    assert market["kind"] == "object" and market["clip_ids"] == ids[1:]
    assert {e["source"] for e in market["evidence"]} == {"transcript"}
    assert out[ids[1]][R.CAPTION_RENAMED] == "Maria hands bread to Tom."
    assert out[ids[2]][R.CAPTION_RENAMED] == "Tom closes the stall."


def test_names_and_things_said_across_clips_become_entities():
    """MR. Video's reduce with speech: a name said in every clip is one entity even where no caption
    describes its person; a thing said in two clips ("the red car") is one entity whose caption mentions
    take its name; the medium itself ("the speech", "the clip") is never an entity."""
    said = ["Maria drives the red car to the market.", "Her friend Tom waits for Maria at the door.",
            "Maria parks the red car near the river."]
    captions = ["The clip shows Maria driving a red car.", "A man waits at the door.",
                'The speech says: "Maria parks." the car stands near the river.']
    rows = [{R.SOURCE_URI: "s.mp4", R.VIDEO_ID: "s", R.CLIP_ID: f"s:{k}", R.START_S: 4.0 * k, R.CAPTION: c,
             R.TRANSCRIPT_TEXT: t} for k, (c, t) in enumerate(zip(captions, said))]
    out = _run(rows)
    by_name = {e["name"]: e for e in out["s:0"][R.ENTITIES]}
    assert set(by_name) == {"Tom", "the red car", "Maria"}
    assert by_name["Tom"]["clip_ids"] == ["s:1"] and by_name["Tom"]["aliases"] == ["A man"]  # not Maria: said all along
    maria = by_name["Maria"]
    assert maria["kind"] == "person" and maria["clip_ids"] == ["s:0", "s:1", "s:2"]
    assert [e["clip_id"] for e in maria["evidence"] if e["source"] == "caption"] == ["s:0", "s:2"]
    car = by_name["the red car"]
    assert car["kind"] == "object" and car["clip_ids"] == ["s:0", "s:2"]
    assert {(e["clip_id"], e["source"]) for e in car["evidence"]} == {
        ("s:0", "caption"), ("s:0", "transcript"), ("s:2", "caption"), ("s:2", "transcript")}
    assert out["s:0"][R.CAPTION_RENAMED] == "The clip shows Maria driving the red car."
    assert out["s:1"][R.CAPTION_RENAMED] == "Tom waits at the door."
    # a sentence that ends inside quotes: the name after it opens a sentence
    assert out["s:2"][R.CAPTION_RENAMED] == 'The speech says: "Maria parks." The red car stands near the river.'
    assert _run(rows, min_clips=4)["s:0"][R.ENTITIES] == [by_name["Tom"]]   # only the named one is left
    # a name the caption gives beats co-occurrence: the woman named Maria is Maria, though Tom is said there
    rows[1][R.CAPTION] = "A woman named Maria waits for her friend at the door."
    out = _run(rows)
    by_name = {e["name"]: e for e in out["s:0"][R.ENTITIES]}
    assert by_name["Maria"]["aliases"] == ["A woman named Maria"] and by_name["Maria"]["clip_ids"] == ["s:0", "s:1", "s:2"]
    assert "Tom" not in by_name                                    # said in one clip only, no caption mention
    assert out["s:1"][R.CAPTION_RENAMED] == "Maria waits for her friend at the door."
    # "X's name is Y" names X; a man the caption names in one clip is not every man of the video
    rows[0][R.CAPTION] = "A man named Pedro waves. The woman's name is Maria and she drives a red car."
    rows[1][R.CAPTION] = "A man waits at the door."
    out = _run(rows)
    assert out["s:0"][R.CAPTION_RENAMED] == "Pedro waves. Maria and she drives the red car."
    assert out["s:1"][R.CAPTION_RENAMED] == "Tom waits at the door."


def test_a_name_only_talked_about_or_said_to_one_of_two_people_names_no_one():
    """MR. Video and StoryTeller name a character from who is there. A name said only of someone absent
    ("waiting for Ben", "Ben is late", "Ben said he…") is not the captioned woman's; "Hello Maria" in a
    clip with two women does not say which one is Maria; speech that calls the named one "he" never names
    a woman. The names stay entities of their own, told in speech."""
    def clips(*pairs, video="x"):
        return [{R.SOURCE_URI: f"{video}.mp4", R.VIDEO_ID: video, R.CLIP_ID: f"{video}:{k}", R.START_S: 5.0 * k,
                 R.CAPTION: c, R.TRANSCRIPT_TEXT: t} for k, (c, t) in enumerate(pairs)]

    absent = _run(clips(("A woman in a red apron cuts apples at a counter.", "I am waiting for Ben. Ben is late again."),
                        ("The woman in the red apron puts the apples on a plate.", "Ben said he would bring the bread.")))
    assert absent["x:0"][R.CAPTION_RENAMED] == "The woman in the red apron cuts apples at a counter."
    assert {e["name"]: e["aliases"] for e in absent["x:0"][R.ENTITIES]}["Ben"] == ["Ben"]
    two = _run(clips(("A woman in a red apron talks to a woman in a blue coat.", "Hello Maria, nice coat.")), min_clips=1)
    assert "Maria" not in two["x:0"][R.CAPTION_RENAMED]
    he = _run(clips(("A woman in a green coat plants a tree.", "Sam plants a tree. He digs first."),
                    ("The woman in the green coat waters it.", "Now Sam waters it.")))
    assert "Sam" not in he["x:0"][R.CAPTION_RENAMED] and "Sam" not in he["x:1"][R.CAPTION_RENAMED]
    # the same scene where the speech calls Sam "she": Sam is the woman
    she = _run(clips(("A woman in a green coat plants a tree.", "Sam plants a tree. She digs first."),
                     ("The woman in the green coat waters it.", "Now Sam waters it.")))
    assert she["x:0"][R.CAPTION_RENAMED] == "Sam plants a tree." and she["x:1"][R.CAPTION_RENAMED] == "Sam waters it."
