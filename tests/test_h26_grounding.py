"""h26 F9: a grounding target scores full marks under the export's own scorer and under `vdata score`.

The exports round a span as their time format writes it ("0.2 - 4.7 seconds" for 0.16 - 4.66, frames
4 - 115, VTG tokens with one decimal): the gold the lmms-eval task folder scores against is that written
span read back by utils.py, and `vdata score` takes a reply within the seconds exports' rounding of the
gold as the gold. A perfect model (one that answers the target) gets 100.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vdata import lmms_task_utils as U
from vdata.exporters import export
from vdata.exporters.demo_build import write_demo_build
from vdata.exporters.lmms_eval import as_written
from vdata.exporters.timefmt import TimeFormat
from vdata.pipelines.scoring import score_build
from vdata.schemas import records as R

# spans whose ends fall between the formats' steps (a tenth of a second, a frame at 25 fps)
ODD_SPANS = {"grd0": (0.16, 1.66), "grd1": (2.04, 3.97)}


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> str:
    out = write_demo_build(str(tmp_path_factory.mktemp("build")))
    part = next(Path(out, "samples").glob("*.parquet"))
    table = pq.read_table(part)
    spans = []
    for sid, value in zip(table[R.SAMPLE_ID].to_pylist(), table[R.ANSWER_SPANS].to_pylist()):
        odd = next((s for key, s in ODD_SPANS.items() if sid.endswith("-" + key)), None)
        spans.append([{"start_s": odd[0], "end_s": odd[1]}] if odd else value)
    at = table.schema.get_field_index(R.ANSWER_SPANS)
    table = table.set_column(at, table.schema.field(at), pa.array(spans, table.schema.field(at).type))
    pq.write_table(table, part)
    return out


@pytest.mark.parametrize("time_format", ["seconds", "frames", "vtg", "timesuite", "bracketed", "relative", "lita",
                                         "grounded_videollm"])
def test_the_target_scores_full_marks_in_the_lmms_eval_task(build_dir, tmp_path, time_format):
    dest = tmp_path / time_format
    export(build_dir, str(dest), "lmms-eval", time_format=time_format, media="none")
    docs = pq.read_table(dest / "data" / "grounding.parquet").to_pylist()
    odd = [d for d in docs if any(d["question_id"].endswith("-" + k) for k in ODD_SPANS)]
    assert len(odd) >= 2
    for doc in docs:
        scores = U.process_results_grounding(doc, [U.doc_to_target(doc)])
        assert scores == {"mean_iou": pytest.approx(1.0), "recall_at_iou_0.5": 1.0}, (doc["answer"], doc["spans"])


def test_vdata_score_gives_the_seconds_targets_100(build_dir, tmp_path):
    dest = tmp_path / "seconds"
    export(build_dir, str(dest), "lmms-eval", time_format="seconds", media="none")
    docs = pq.read_table(dest / "data" / "grounding.parquet").to_pylist()
    assert "0.2 - 1.7 seconds" in {d["answer"] for d in docs}   # 0.16 - 1.66 as the export writes it
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"question_id": d["question_id"], "prediction": d["answer"]}) + "\n"
                             for d in docs))
    report = score_build(build_dir, str(preds))
    assert report["grounding"]["miou"] == 100.0
    # a reply off by more than the rounding is scored by its IoU as before
    off = tmp_path / "off.jsonl"
    off.write_text("".join(json.dumps({"question_id": d["question_id"], "interval": [0.3, 1.66]}) + "\n"
                           for d in docs if d["question_id"].endswith("-grd0")))
    miou = score_build(build_dir, str(off))["grounding"]["miou"]
    assert 0 < miou < 100


def test_a_moment_is_scored_against_the_position_the_target_names():
    """A moment in a position format (relative: hundredths of the video) is written to the nearest position:
    in an hour-long video 100 s is "03", 108 s; the target must still be found within 3 s."""
    tf = TimeFormat("relative", duration_s=3600.0)
    doc = {"time_format": "relative", "duration_s": 3600.0, "fps": 25.0}
    assert as_written(tf, doc, 100.0) == pytest.approx(108.0)
    doc["spans"] = [[as_written(tf, doc, 100.0)] * 2]
    assert U.process_results_moment(doc, [tf.point(100.0)])["within_3s"] == 1.0
