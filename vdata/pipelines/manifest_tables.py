"""A manifest file's records: CSV / TSV, JSON Lines, a JSON list, or Parquet, as people write them.

pyarrow reads Parquet, and CSV once told what it gets wrong alone: called plainly, its CSV reader stops the
build at the first row with one field too many (an unquoted comma in a title), reads Excel's cp1252 CSV
as bytes (`b'Caf\\xe9'`) and Excel's semicolon CSV (most of Europe) as one column, and turns ids such as
`00123` into 123. So the text is decoded as subtitles are (a BOM, UTF-8, else the most coherent code
page), the delimiter is sniffed (`,` `;` tab `|`, or Excel's `sep=` line), every column is read as text
and made numeric here only where every value is a number without a leading zero, and a row of the wrong
width is handed back (`invalid_row_handler`) as a problem with its line. 200,000 rows: 0.56 s, against
0.25 s for the plain call (bench/bench_manifest.py). JSON is read here: pyarrow's JSON reader
stops at the first bad line and reads no JSON list. A record that cannot be read is a problem, reported
as a reject row while the rest go on.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field

from vdata.schemas.annotation_formats import json_lines, text_lines

SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
# columns that name the video file, the first present is suggested when `path_column` is missing
PATH_COLUMN_GUESSES = ("path", "video", "video_path", "filepath", "file_path", "file", "filename", "file_name",
                       "video_file", "clip", "url", "video_url")
# numbers as a column holds them: no leading zero (an id like 00123 is text)
_INTEGER = r"[+-]?(0|[1-9]\d*)"
_FLOAT = r"[+-]?(0|[1-9]\d*)?\.\d+([eE][+-]?\d+)?|[+-]?(0|[1-9]\d*)[eE][+-]?\d+"


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
    from vdata.media.subtitles import read_text   # deferred: pysubs2 costs every build ~0.05 s at its start

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
    """pyarrow's CSV reader, told what it cannot find out itself: the delimiter, that every column is text
    (numbers are found here, per column), and to hand over each row of the wrong width, numbered."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    lines = text_lines(text)   # (a quoted field may hold U+2028: no line break of the CSV)
    at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if at is None:
        raise ManifestError("the file is empty")
    hint = re.fullmatch(r"\s*sep=(.)\s*", lines[at])   # Excel's delimiter line: "sep=;" before the header
    if hint:
        delimiter = hint.group(1)
        at = next((i for i in range(at + 1, len(lines)) if lines[i].strip()), None)
        if at is None:
            raise ManifestError("the file has no header")
    elif delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(lines[at], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    header = [h.strip() for h in next(csv.reader([lines[at]], delimiter=delimiter))]
    out = ManifestTable(header)

    def wrong_width(row) -> str:
        where = f"line {row.number}" if row.number is not None else "a row"
        out.problems.append(ManifestProblem(
            where, "manifest_row_malformed", f"{where} has {row.actual_columns} fields, the header "
            f"{row.expected_columns} (a {'comma' if delimiter == ',' else repr(delimiter)} inside a value "
            f"needs quotes)", row.text[:500]))
        return "skip"

    try:
        table = pcsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pcsv.ReadOptions(skip_rows=at + 1, column_names=header, use_threads=False),   # numbered
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                            invalid_row_handler=wrong_width),
            convert_options=pcsv.ConvertOptions(column_types={h: pa.string() for h in header}))
    except pa.ArrowInvalid as e:
        raise ManifestError(str(e)) from None
    typed = pa.Table.from_arrays([_typed(table.column(i)) for i in range(table.num_columns)], names=header)
    # a record is named by its row after the header (a quoted value may span lines, so no line number)
    out.records = [(f"row {i}", record) for i, record in enumerate(typed.to_pylist(), start=1)]
    return out


def _typed(column):
    """A column of text: empty cells as None, and numbers where every other cell is an integer (or a
    decimal) written without a leading zero (an id like 00123 stays text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
    present = pc.drop_null(column)
    if len(present) == 0:
        return column
    if pc.all(pc.match_substring_regex(present, f"^(?:{_INTEGER})$")).as_py():
        return pc.cast(column, pa.int64())
    if pc.all(pc.match_substring_regex(present, f"^(?:{_INTEGER}|{_FLOAT})$")).as_py():
        return pc.cast(column, pa.float64())
    return column


def guess_path_column(columns: list[str]) -> str | None:
    lowered = {c.lower(): c for c in columns}
    return next((lowered[g] for g in PATH_COLUMN_GUESSES if g in lowered), None)


__all__ = ["ManifestError", "ManifestProblem", "ManifestTable", "SUFFIXES", "guess_path_column", "read_manifest"]
