"""The report of a `vdata haystack` benchmark folder: `report.md` and `report.html`, short and self-contained.

A benchmark folder is no pipeline build (its manifest has no stages, rows or rejects of its own; items.parquet,
rejects.parquet, summary.json and run_report.json hold what it is), so `vdata report` on it writes this instead
of the build report: items and questions per task, length and needle type; the dropped items by reason, with
their messages; the grid cells not built; the run's timings; where its evaluation folders are.

    html_path, md_path = write_haystack_report("out/bench")   # `vdata report out/bench` calls it
"""
from __future__ import annotations

import html
import json
import os

HAYSTACK_ITEMS = "items.parquet"


def is_haystack_folder(folder: str) -> bool:
    return os.path.isfile(os.path.join(str(folder), HAYSTACK_ITEMS))


def _json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def haystack_report_data(folder: str) -> dict:
    """Everything the report shows: `vdata.exporters.hf_local.haystack_summary` (the card's facts) plus the
    name, the per-cell table of summary.json and run_report.json's planned count and timings."""
    import pyarrow.parquet as pq

    from vdata.exporters.hf_local import haystack_summary
    from vdata.exporters.source import ExportError, open_build

    try:   # an interrupted build's folder: the words the card, push and score use for it
        open_build(folder, allow_empty=True)
    except ExportError as e:
        raise FileNotFoundError(str(e)) from None
    manifest = _json(os.path.join(folder, "manifest.json"))
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    try:
        items = pq.read_table(os.path.join(folder, HAYSTACK_ITEMS))
    except Exception as e:   # an interrupted build leaves a 4-byte items.parquet: say so, not an Arrow trace
        raise FileNotFoundError(f"{folder}/{HAYSTACK_ITEMS} cannot be read ({type(e).__name__}: {e}); if its build "
                                "was interrupted, run `vdata haystack build` again") from None
    data = haystack_summary(folder, items, config)
    run = _json(os.path.join(folder, "run_report.json"))
    data.update(name=manifest.get("name") or config.get("name") or os.path.basename(os.path.abspath(folder)),
                planned=run.get("planned"), timings=run.get("timings") or {}, render=run.get("render"))
    return data


def _rows(data: dict) -> list[tuple[str, list[list]]]:
    """(title, table rows; the first row the header) of each table of the report."""
    tables = [("Items and questions per task", [["task", "items", "questions"]] +
               [[t, c["items"], c["questions"]] for t, c in data["by_task"].items()])]
    if data["table"]:
        tables.append(("Per task, haystack length and needle type",
                       [["task", "length (s)", "needle type", "items", "questions"]] +
                       [[r.get("task"), r.get("length_s"), r.get("needle_type"), r.get("items"), r.get("questions")]
                        for r in data["table"]]))
    drops = [["reason", "dropped items", "examples (item: message)"]]
    for key, n in data["rejects_by_reason"].items():
        examples = "; ".join(f"{sid}: {msg}" for sid, msg in data["reject_examples"].get(key, []))
        drops.append([key.partition(":")[2] or key, n, examples or "-"])
    if len(drops) > 1:
        tables.append(("Dropped items by reason", drops))
    if data["skipped_cells"]:
        tables.append(("Grid cells not built", [["cell: reason", "count"]] +
                       [[k, v] for k, v in data["skipped_cells"].items()]))
    return tables


def _headline(data: dict) -> list[tuple[str, str]]:
    t = data["timings"]
    out = [("items", str(data["items"])), ("questions", str(data["questions"])),
           ("dropped items", str(data["dropped"]))]
    if data["planned"] is not None:
        out.append(("planned items", str(data["planned"])))
    out.append(("verification", "on" if data["verified"] else "off"))
    if t.get("wall_s") is not None:
        out.append(("wall time", f"{float(t['wall_s']):.1f} s"))
    return out


def _where(data: dict) -> list[str]:
    lines = ["`items.parquet`: the questions; `rejects.parquet`: the dropped items with their reasons; "
             "`summary.md`: the build's own summary"]
    if data["lmms_task"]:
        lines.append(f"`lmms_eval/{data['lmms_task']}/`: the lmms-eval task folder (`--include_path` it)")
    lines.append("`vlmevalkit/`: the VLMEvalKit TSV and its videos")
    return lines


def _cell(v) -> str:
    return str("-" if v is None else v).replace("|", "\\|").replace("\n", " ")


def render_markdown(data: dict) -> str:
    out = [f"# {data['name']}: haystack benchmark report", ""]
    out += [" | ".join(f"**{k}** {v}" for k, v in _headline(data)), ""]
    for title, rows in _rows(data):
        out += [f"## {title}", "", "| " + " | ".join(map(_cell, rows[0])) + " |",
                "|" + "---|" * len(rows[0])]
        out += ["| " + " | ".join(map(_cell, r)) + " |" for r in rows[1:]]
        out.append("")
    if not data["rejects_by_reason"]:
        out += ["No item was dropped.", ""]
    out += ["## Files", ""] + [f"- {line}" for line in _where(data)]
    return "\n".join(out) + "\n"


def render_html(data: dict) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>{e(data['name'])}: haystack benchmark report</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}</style></head><body>",
             f"<h1>{e(data['name'])}: haystack benchmark report</h1><p>",
             " &middot; ".join(f"<b>{e(k)}</b> {e(v)}" for k, v in _headline(data)), "</p>"]
    for title, rows in _rows(data):
        parts.append(f"<h2>{e(title)}</h2><table><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in rows[0]) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e('-' if c is None else str(c))}</td>" for c in r) + "</tr>" for r in rows[1:]]
        parts.append("</table>")
    if not data["rejects_by_reason"]:
        parts.append("<p>No item was dropped.</p>")
    parts.append("<h2>Files</h2><ul>" + "".join(f"<li>{e(line)}</li>" for line in _where(data)) + "</ul></body></html>")
    return "\n".join(parts) + "\n"


def write_haystack_report(folder: str, html_name: str = "report.html", md_name: str = "report.md") -> tuple[str, str]:
    """Write report.html and report.md into the benchmark folder; returns their paths (html, md)."""
    return write_haystack_files(folder, haystack_report_data(folder), html_name, md_name)


def write_haystack_files(folder: str, data: dict, html_name: str, md_name: str) -> tuple[str, str]:
    paths = []
    for name, text in ((html_name, render_html(data)), (md_name, render_markdown(data))):
        path = os.path.join(folder, name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        paths.append(path)
    return paths[0], paths[1]
