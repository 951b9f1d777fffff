"""h26 L9: the report's sample viewer (report.html, report.md) writes a sample's time placeholders
(`{{span:0,5}}`, `{{t:12.5}}`) as seconds, as the card's Samples section does, never raw; a source text's
escaped braces still read as the source wrote them."""
from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from vdata.pipelines.report import write_report
from vdata.prompts import escape_placeholders
from vdata.schemas import records as R

from report_outputs import make_sample_output  # noqa: E402


def test_sample_viewer_renders_time_placeholders_in_seconds(tmp_path):
    out = tmp_path / "out"
    make_sample_output(out)
    part = out / "samples" / "part-0.parquet"
    table = pq.read_table(part)
    is_qa = pc.equal(table[R.TASK], "open_qa")
    question = "What rolls in {{span:10,11.8}}, after {{t:10.25}}? " + escape_placeholders("The sign says {{x}}.")
    for col, text in ((R.QUESTION, question), (R.ANSWER, "A ball, from {{t:11}} on.")):
        at = table.schema.get_field_index(col)
        table = table.set_column(at, table.schema.field(at), pc.if_else(is_qa, text, table[col]))
    pq.write_table(table, part)

    html_path, md_path = write_report(out)
    html, md = Path(html_path).read_text(), Path(md_path).read_text()
    viewer = html.split('<section id="samples">')[1].split("</section>")[0]
    shown = ("What rolls in 10.0 - 11.8 seconds, after 10.3 seconds? The sign says {{x}}.", "A ball, from 11.0 seconds on.")
    assert f"<dt>question</dt><dd>{shown[0]}</dd>" in viewer
    assert f"<dt>answer</dt><dd>{shown[1]}</dd>" in viewer
    assert f"- question: {shown[0]}" in md and f"- answer: {shown[1]}" in md
    for text in (viewer, md):
        assert "{{span:" not in text and "{{t:" not in text
