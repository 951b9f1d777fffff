"""A manifest file's records: CSV / TSV, JSON Lines, a JSON list, or Parquet, as people write them.

Parquet is read by pyarrow. The text formats are read here, record by record, because a whole-file
reader makes one bad record the end of the build: pyarrow's CSV reader stops at the first row with
one field too many (an unquoted comma in a title) and its JSON reader at the first bad line, each with
a traceback, and it reads a spreadsheet's CSV wrong in two common ways: one saved as cp1252 (Excel on
Windows) gives bytes (`b'Caf\\xe9'`), one saved with semicolons (Excel in most of Europe) one column.
It also turns ids such as `00123` into the number 123. Here the encoding is found as for subtitles
(a BOM, UTF-8, else the most coherent code page), the delimiter is sniffed (`,` `;` tab `|`), a
column becomes numbers only where every value is one and none has a leading zero, and a record that
cannot be read is a problem with its line number, reported as a reject row while the rest go on.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field

from vdata.media.subtitles import read_text
from vdata.schemas.annotation_formats import json_lines

TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")
SUFFIXES = TEXT_SUFFIXES + (".parquet",)
# columns that name the video file, the first present is suggested when `path_column` is missing
PATH_COLUMN_GUESSES = ("path", "video", "video_path", "filepath", "file_path", "file", "filename", "file_name",
                       "video_file", "clip", "url", "video_url")
_INTEGER = re.compile(r"[+-]?(0|[1-9]\d*)")
_FLOAT = re.compile(r"[+-]?(0|[1-9]\d*)?\.\d+([eE][+-]?\d+)?|[+-]?(0|[1-9]\d*)[eE][+-]?\d+")


@dataclass
class ManifestProblem:
    where: str      # "line 7"
    reason: str     # manifest_row_malformed
    message: str
    raw: str


@dataclass
class ManifestTable:
    columns: list[str]
    records: list[tuple[str, dict]] = field(default_factory=list)   # (where, record)
    problems: list[ManifestProblem] = field(default_factory=list)


class ManifestError(ValueError):
    """The file as a whole cannot be read (no header, not JSON at all)."""


def read_manifest(path: str) -> ManifestTable:
    low = path.lower()
    if low.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return ManifestTable(table.column_names, [(f"row {i + 1}", r) for i, r in enumerate(table.to_pylist())])
    text = read_text(path)
    if low.endswith(".jsonl") or (low.endswith(".json") and not text.lstrip().startswith(("[", "{"))):
        return _json_lines(text)
    if low.endswith(".json"):
        return _json_document(text)
    return _delimited(text, "\t" if low.endswith(".tsv") else None)


def _json_lines(text: str) -> ManifestTable:
    out = ManifestTable([])
    for number, line, record, error in json_lines(text):
        if error:
            out.problems.append(ManifestProblem(f"line {number}", "manifest_row_malformed", error, line[:500]))
        else:
            _add_record(out, f"line {number}", record, line)
    return out


def _json_document(text: str) -> ManifestTable:
    """A JSON list of records, or one JSON object holding such a list (`{"videos": [...]}`) or mapping
    ids to records (`{"v_abc": {...}}`: the id is kept as `id` where the record has none)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f"not JSON ({e.msg}, line {e.lineno}); for one record per line name it .jsonl") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
        if len(lists) == 1:
            data = lists[0]
        elif data and all(isinstance(v, dict) for v in data.values()):
            data = [{"id": key, **value} if "id" not in value else value for key, value in data.items()]
        else:
            raise ManifestError("a JSON object that holds no list of records")
    if not isinstance(data, list):
        raise ManifestError("JSON that is not a list of records")
    out = ManifestTable([])
    for i, record in enumerate(data):
        _add_record(out, f"record {i}", record, json.dumps(record, default=str)[:500])
    return out


def _add_record(out: ManifestTable, where: str, record, raw: str) -> None:
    if not isinstance(record, dict):
        out.problems.append(ManifestProblem(where, "manifest_row_malformed", f"{where} is not a JSON object", raw))
        return
    out.records.append((where, record))
    out.columns.extend(k for k in record if k not in out.columns)


def _delimited(text: str, delimiter: str | None) -> ManifestTable:
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), None)
    if header_line is None:
        raise ManifestError("the file is empty")
    hint = re.fullmatch(r"\s*sep=(.)\s*", header_line)   # Excel's delimiter line: "sep=;" before the header
    if hint:
        delimiter = hint.group(1)
        text = text.split(header_line, 1)[1]
    elif delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(header_line, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = None
    rows: list[tuple[str, list[str]]] = []
    out = ManifestTable([])
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        if header is None:
            header = [h.strip() for h in fields]
            continue
        where = f"line {reader.line_num}"
        if len(fields) != len(header):
            out.problems.append(ManifestProblem(
                where, "manifest_row_malformed", f"{where} has {len(fields)} fields, the header {len(header)} "
                f"(a {'comma' if delimiter == ',' else repr(delimiter)} inside a value needs quotes)",
                delimiter.join(fields)[:500]))
            continue
        rows.append((where, fields))
    out.columns = header
    numeric = [_numbers([r[1][i] for r in rows]) for i in range(len(header))]
    for where, fields in rows:
        out.records.append((where, {name: (convert(v) if v != "" else None)
                                    for name, v, convert in zip(header, fields, numeric)}))
    return out


def _numbers(values: list[str]):
    """How to read one column's cells: as int or float where every non-empty one is such a number written
    without a leading zero (an id like 00123 stays text), else as text."""
    present = [v.strip() for v in values if v.strip() != ""]
    if present and all(_INTEGER.fullmatch(v) for v in present):
        return lambda v: int(v)
    if present and all(_INTEGER.fullmatch(v) or _FLOAT.fullmatch(v) for v in present):
        return lambda v: float(v)
    return lambda v: v


def guess_path_column(columns: list[str]) -> str | None:
    lowered = {c.lower(): c for c in columns}
    return next((lowered[g] for g in PATH_COLUMN_GUESSES if g in lowered), None)


__all__ = ["ManifestError", "ManifestProblem", "ManifestTable", "SUFFIXES", "guess_path_column", "read_manifest"]
