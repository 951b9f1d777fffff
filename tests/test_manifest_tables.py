"""Manifests as people write them: Excel's CSV (cp1252, semicolons), TSV, JSON Lines with a bad line, a
JSON list, ids with leading zeros, a row with a stray comma. Each readable record becomes a video row, each
unreadable one a reject row with its line, and the build goes on."""
import json

import pytest

from vdata.pipelines.ingest import discover
from vdata.pipelines.manifest_tables import ManifestError, read_manifest
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config


def records(path):
    table = read_manifest(str(path))
    return [r for _, r in table.records], [(p.where, p.reason) for p in table.problems]


def test_spreadsheet_csv_in_cp1252_with_semicolons_reads_as_written(tmp_path):
    path = tmp_path / "videos.csv"
    path.write_bytes("file;title;start\r\na.mp4;Café au lait, très bon;1.5\r\nb.mp4;Señor;2\r\n".encode("cp1252"))
    got, problems = records(path)
    assert problems == []
    assert got == [{"file": "a.mp4", "title": "Café au lait, très bon", "start": 1.5},
                   {"file": "b.mp4", "title": "Señor", "start": 2.0}]
    path.write_text("sep=;\nfile;title\na.mp4;x, y\n")   # Excel's line naming the delimiter
    assert records(path) == ([{"file": "a.mp4", "title": "x, y"}], [])


def test_ids_keep_their_leading_zeros_and_numbers_stay_numbers(tmp_path):
    path = tmp_path / "videos.tsv"
    path.write_text("path\tid\tframes\tlabel\tnote\na.mp4\t00123\t16\t1\t\nb.mp4\t00456\t32\tx\tkeep\n")
    got, _ = records(path)
    assert [r["id"] for r in got] == ["00123", "00456"] and [r["frames"] for r in got] == [16, 32]
    assert [r["label"] for r in got] == ["1", "x"] and got[0]["note"] is None


def test_bad_records_are_problems_with_their_line_and_the_rest_are_read(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('path,title\na.mp4,Cooking, fast\nb.mp4,"Quoted, fine"\n')
    got, problems = records(ragged)
    assert got == [{"path": "b.mp4", "title": "Quoted, fine"}] and problems == [("line 2", "manifest_row_malformed")]
    lines = tmp_path / "videos.jsonl"
    lines.write_text('{"path": "a.mp4", "tags": ["x"]}\n{"path": "b.mp4",\n\n["not", "an", "object"]\n{"path": "c.mp4"}\n')
    got, problems = records(lines)
    assert [r["path"] for r in got] == ["a.mp4", "c.mp4"] and got[0]["tags"] == ["x"]
    assert problems == [("line 2", "manifest_row_malformed"), ("line 4", "manifest_row_malformed")]


def test_json_lists_and_objects_of_records(tmp_path):
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps([{"video": "a.mp4", "conversations": [{"from": "human", "value": "hi"}]}]))
    assert records(as_list)[0][0]["conversations"][0]["value"] == "hi"
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"version": 1, "videos": [{"path": "a.mp4"}, {"path": "b.mp4"}]}))
    assert [r["path"] for r in records(wrapped)[0]] == ["a.mp4", "b.mp4"]
    by_id = tmp_path / "by_id.json"
    by_id.write_text(json.dumps({"v_1": {"path": "a.mp4"}, "v_2": {"path": "b.mp4", "id": "own"}}))
    assert [r["id"] for r in records(by_id)[0]] == ["v_1", "own"]
    broken = tmp_path / "broken.json"
    broken.write_text('[{"path": "a.mp4"},')
    with pytest.raises(ManifestError, match="not JSON"):
        read_manifest(str(broken))


def test_ingest_makes_reject_rows_and_names_the_path_column_it_would_use(tmp_path):
    manifest = tmp_path / "videos.csv"
    manifest.write_text("video,label\nclips/a.mp4,cooking\n,no file\nclips/b.mp4,biking,extra\n")

    def cfg(**over):
        return parse_config({"input": [{"manifest": str(manifest), **over}], "output": {"dir": str(tmp_path / "out")},
                             "stages": [{"probe": {}}]})

    with pytest.raises(ConfigError, match=r"no column 'path' \(columns: video, label\); set input\[0\].path_column: video"):
        discover(cfg(), str(tmp_path / "media"))
    rows = discover(cfg(path_column="video"), str(tmp_path / "media"))
    kept = [r for r in rows if not r.get(R.REJECT_REASON)]
    assert [r[R.PATH] for r in kept] == [str(tmp_path / "clips" / "a.mp4")]
    assert json.loads(kept[0][R.SOURCE_META]) == {"label": "cooking"} and kept[0][R.SOURCE_URI].endswith("videos.csv#0")
    rejects = sorted((r[R.SOURCE_URI].rsplit("#", 1)[1], r[R.REJECT_REASON], r[R.REJECT_MESSAGE])
                     for r in rows if r.get(R.REJECT_REASON))
    # a record is #<index from 0>, kept or rejected (as kept rows are); text that made no record, #line<n>
    assert [(at, reason) for at, reason, _ in rejects] == [("1", "manifest_row_malformed"),       # the 2nd record
                                                           ("line4", "manifest_row_malformed")]   # the file's line
    assert "row 2 names no file in 'video'" in rejects[0][2] and "has 3 fields, the header 2" in rejects[1][2]
    # `vdata validate` says so before a build: the config is valid, and two records will be rejects
    import yaml
    from click.testing import CliRunner

    from vdata.cli import main

    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"")
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump({"input": [{"manifest": str(manifest), "path_column": "video"}],
                                        "output": {"dir": str(tmp_path / "out")}, "stages": [{"probe": {}}]}))
    res = CliRunner().invoke(main, ["validate", str(cfg_path)])
    assert res.exit_code == 0 and ": valid (1 stages" in res.output, res.output
    assert "note: input[0].manifest: 2 of 3 records will be ingest rejects (row 2 names no file" in res.output
    assert "line 4 has 3 fields" in res.output


def test_a_json_string_holding_a_unicode_line_separator_stays_one_record(tmp_path):
    """Outside check h26 F8: `str.splitlines` cut JSON Lines at a raw U+2028 inside a string (json.dumps with
    ensure_ascii=False writes it raw; scraped descriptions hold it), so a valid row became two broken ones."""
    rows = [{"path": "a.mp4", "description": "line one\u2028line two"}, {"path": "b.mp4", "title": "x\u0085y\x0cz"}]
    path = tmp_path / "videos.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows), encoding="utf-8")
    assert records(path) == (rows, [])
    path.write_text(json.dumps(rows[0], ensure_ascii=False), encoding="utf-8")   # one row, no final newline
    assert records(path) == ([rows[0]], [])
    csv_path = tmp_path / "videos.csv"
    csv_path.write_text('path,title\na.mp4,"one\u2028two"\n', encoding="utf-8")
    assert records(csv_path) == ([{"path": "a.mp4", "title": "one\u2028two"}], [])
