"""h26 F19 / F10: what the pushed card says about the thresholds and the times of the Parquet configs.

F19: a folder written by `vdata rethreshold --write-to` keeps the build's config in its manifest and the
settings applied in `derived_from`; its card (pushed, or `vdata card`) stated the build's thresholds in the
Pipeline table, "Thresholds in force" and the Config block. Now it states the values the rows passed and
says they were re-thresholded, from what to what.
F10: the Parquet configs keep `{{span:…}}` / `{{t:…}}` placeholders and source-video times next to a cut
clip's `video` (its offset in `video_origin_s`), and the card never said so. Now its Loading section
explains both, with a snippet that renders the text in seconds of the `video` file (checked here by running
it on the pushed rows). Real huggingface_hub against the local stand-in, tests/fakehub.py.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakehub import FakeHub
from test_h26_rethreshold import _split_build
from test_hub import _media, build_dir, online, token  # noqa: F401  (fixtures)

from vdata.exporters.demo_build import write_demo_build
from vdata.hub import push, write_card
from vdata.pipelines.rethreshold import rethreshold_dataset
from vdata.prompts import escape_placeholders
from vdata.schemas import records as R


def _thresholds_line(card: str, stage: str) -> str:
    block = card.split("Thresholds in force (defaults included):")[1].split("###")[0]
    (line,) = [x for x in block.splitlines() if x.startswith(f"- {stage}: ")]
    return line


def test_card_of_a_rethresholded_folder_states_the_thresholds_applied(tmp_path, token, online):  # noqa: F811
    out, _, _ = _split_build(tmp_path)
    dest = tmp_path / "strict"
    result = rethreshold_dataset(out, {"sharpness_min": "100"}, write_to=str(dest))
    assert result.dropped["blurry"] > 0

    build_card = open(write_card(out, str(tmp_path / "build.md"))).read()
    assert "sharpness_min=30" in _thresholds_line(build_card, "quality") and "Re-thresholded" not in build_card

    local = open(write_card(str(dest), str(tmp_path / "local.md"))).read()
    with FakeHub(token) as hub:
        push(str(dest), "me/strict", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "s"))
        pushed = hub.repos["me/strict"].files["README.md"].decode()
    for card in (local, pushed):
        line = _thresholds_line(card, "quality")
        assert "sharpness_min=100" in line and "sharpness_min=30" not in line
        (row,) = [x for x in card.splitlines() if re.match(r"\| \d+ \| quality \|", x)]   # the Pipeline table
        assert "sharpness_min" in row and "100" in row and "re-thresholded: sharpness_min 30 -> 100" in row
        note = re.search(r"Re-thresholded after the build by `vdata rethreshold`[^\n]*", card).group(0)
        assert "quality.sharpness_min 30 -> 100" in note and f"blurry {result.dropped['blurry']}" in note
        config = card.split("```yaml\n")[1].split("```")[0]
        assert config.startswith("# the build's config; `vdata rethreshold` then applied") and \
            "#   quality.sharpness_min: 100" in config and "(was 30)" in config


@pytest.fixture(scope="module")
def placeholder_build(tmp_path_factory) -> str:
    """The demo build with grounding text as generate writes it: placeholders at the answer span, in
    source-video seconds; an open_qa answer quoting a source text's literal `{{x}}` (escaped)."""
    out = write_demo_build(str(tmp_path_factory.mktemp("phbuild")), media_dir=_media(tmp_path_factory))
    for part in Path(out, "samples").glob("*.parquet"):
        rows = pq.read_table(part).to_pylist()
        for r in rows:
            if r[R.TASK] == "grounding" and r[R.ANSWER_SPANS]:
                a, b = r[R.ANSWER_SPANS][0]["start_s"], r[R.ANSWER_SPANS][0]["end_s"]
                r[R.QUESTION], r[R.ANSWER] = f"What happens from {{{{t:{a}}}}} on?", f"{{{{span:{a},{b}}}}}"
            elif r[R.TASK] == "open_qa":
                r[R.ANSWER] = escape_placeholders("The sign says {{x}}.")
        pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(part)), part)
    return out


def test_pushed_parquet_has_rendered_text_and_the_card_explains_placeholders_and_video_origin(  # noqa: F811
        placeholder_build, token, tmp_path, online):  # noqa: F811
    with FakeHub(token) as hub:
        push(placeholder_build, "me/times", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "s"))
        files = dict(hub.repos["me/times"].files)
    card = files["README.md"].decode()
    loading = card.split("## Loading")[1].split("### LLaMA-Factory")[0]
    assert "#### Times in the Parquet configs" in loading
    assert "train on `question_text`, `answer_text` and `options_text` (times rendered as `seconds`" in loading
    assert "`video_origin_s`" in loading and "t - video_origin_s" in loading
    assert "{{span:12.3,20.5}}" in loading and "{{t:12.3}}" in loading and "vdata.exporters.timefmt" in loading
    snippet = loading.split("```python\n")[-1].split("```")[0]
    assert "TimeFormat(" in snippet and "render_text" in snippet

    def rows(subset):
        path = next(p for p in files if p.startswith(f"data/{subset}/") and p.endswith(".parquet"))
        return pq.read_table(io.BytesIO(files[path])).to_pylist()

    grounding = [r for r in rows("grounding") if "{{span:" in (r["answer"] or "")]
    assert any(r["video_origin_s"] > 0 for r in grounding) and any(r["start_s"] is None for r in grounding)
    for row in grounding:   # the columns, and the card's snippet run on the row: seconds of its `video`
        span = row["answer_spans"][0]
        a, b = span["start_s"] - row["video_origin_s"], span["end_s"] - row["video_origin_s"]
        expected = (f"What happens from {a:.1f} seconds on?", f"{a:.1f} - {b:.1f} seconds")
        assert (row["question_text"], row["answer_text"]) == expected
        scope = {"ds": [row]}
        exec(snippet, scope)
        assert (scope["question"], scope["answer"]) == expected
    mcq = rows("mcq")
    assert all(r["options_text"] == r["options"] and r["question_text"] == r["question"] for r in mcq)
    assert {r["answer_text"] for r in rows("open_qa")} >= {"The sign says {{x}}."}


def test_local_card_has_no_pushed_parquet_times_section(build_dir, tmp_path):  # noqa: F811
    """`vdata card`: the build's own files have no `video` column, so no word about it."""
    text = open(write_card(build_dir, str(tmp_path / "README.md"))).read()
    assert "#### Times in the Parquet configs" not in text
