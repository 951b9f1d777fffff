"""The run report: `report.html` (self-contained) and `report.md` (SVG plots and JPEG thumbnails in `report_assets/`).

Three steps, one module each: `report_data` loads what a build left in its output folder and
`report_sections` turns it into sections of text, tables and plain figure numbers; `report_figures`
draws each section's figure (SVG charts, `svg_chart`); the jinja2 templates in `templates/` render both files
from the same list of sections, so they always say the same thing. Each plot appears only when its data
exists; a section that fails becomes a visible warning, not a lost report.

    html_path, md_path = write_report("out/quickstart")
"""
from __future__ import annotations

import base64
import functools
import os
import re
import shutil
import time
import traceback
from pathlib import Path

import click
import jinja2

from .report_data import RunData, Section, answer_position_balance, fmt, is_number, load_run
from .report_figures import KEPT_COLOR, REJECTED_COLOR, draw
from .remote import BuildLocation, RemoteBuildError, put_report, readable_build
from .report_haystack import haystack_report_data, is_haystack_folder, write_haystack_files
from .report_sections import COLLECTORS

__all__ = ["KEPT_COLOR", "REJECTED_COLOR", "ReportWriteError", "answer_position_balance", "build_sections", "load_run",
           "render_html", "render_markdown", "report_cmd", "write_report"]

HTML_NAME = "report.html"
MD_NAME = "report.md"
ASSETS_DIR = "report_assets"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def build_sections(run: RunData) -> list[Section]:
    """Every section whose data exists, with its plot drawn. A section that fails becomes a warning."""
    sections = []
    for name, collect in COLLECTORS:
        try:
            s = collect(run)
            if s is not None and s.figure is not None:
                s.plot = draw(s.key, s.figure)
        except Exception as e:
            run.warnings.append(f"{name}: {traceback.format_exception_only(type(e), e)[-1].strip()}")
            continue
        if s is not None:
            sections.append(s)
    return sections


# --------------------------------------------------------------------------- rendering
_MD_MARKUP = re.compile(r"([\\`*<>]|\](?=\())")


def _md_text(text) -> str:
    """Free text (a file name, a sample's words) as Markdown shows it literally: `*star*`, `[x](y)` and `<i>`
    in a name are not emphasis, a link and HTML. Brackets are a link only before "(" and intraword
    underscores never emphasize, so "[1.0-1.8 s]" and `q_a` stay as they are."""
    return _MD_MARKUP.sub(r"\\\1", str(text))


def _md_cell(v) -> str:
    return fmt(v).replace("|", "\\|").replace("\n", " ")


def _md_row(cells: list, header: bool = False) -> str:
    return "| " + " | ".join(_md_cell((c or " ") if header else c) for c in cells) + " |"


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), trim_blocks=True, lstrip_blocks=True,
                             autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             bytecode_cache=_bytecode_cache())
    env.filters.update(fmt=fmt, b64=lambda data: base64.b64encode(data).decode(), md_row=_md_row,
                       md_text=_md_text, anchor=lambda key: key.replace("_", "-"),
                       rstrip_newlines=lambda text: text.rstrip("\n"))
    env.tests["number_like"] = is_number
    return env


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """The compiled templates, kept between builds: compiling both costs ~0.15-0.35 s of a small build's
    finish (2 cores). Keyed by each template's source checksum, so an edited template is compiled afresh.
    A cache that cannot be written (a full disk) costs a compile, never the report."""

    def dump_bytecode(self, bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    try:
        return _TemplateCache()   # a folder of this user's own in the temp dir
    except (RuntimeError, OSError):   # no safe temp folder: compile each time
        return None


def _context(run: RunData, sections: list[Section]) -> dict:
    m = run.manifest
    cards = [("rows written", fmt(m.get("rows", 0) or 0)), ("rejects", fmt(m.get("rejects", 0) or 0)),
             ("input videos", fmt(m.get("inputs"))), ("wall time", f"{m.get('wall_s', 0):.1f} s"),
             ("level", run.level or "–")]
    return {"name": m.get("name", "vdata build"), "run_id": str(m.get("run_id", "–")),
            "written": time.strftime("%Y-%m-%d %H:%M:%S"), "output_dir": _output_location(run),
            "sections": sections, "warnings": run.warnings, "cards": cards}


def _output_location(run: RunData) -> str:
    """Where the build is: its output URL when it was written to object storage (the report is drawn from a
    local copy of its tables), else the folder the report reads."""
    recorded = str(run.manifest.get("output_dir") or "")
    return recorded if "://" in recorded else os.path.abspath(run.output_dir)


def render_html(run: RunData, sections: list[Section]) -> str:
    return _environment().get_template("report.html.j2").render(_context(run, sections))


def render_markdown(run: RunData, sections: list[Section], image_paths: dict[str, str],
                    thumb_paths: list[list[str]] | None = None) -> str:
    """`thumb_paths[i][j]`: the file of the j-th thumbnail of the i-th card of the sample viewer."""
    text = _environment().get_template("report.md.j2").render(_context(run, sections), image_paths=image_paths,
                                                             thumb_paths=thumb_paths or [])
    return text.rstrip("\n") + "\n"   # the template's section blocks each end in a blank line


class ReportWriteError(OSError):
    """The report's files cannot be written into the build folder (read-only, or a path in the way)."""


def write_report(output_dir: str | os.PathLike) -> tuple[str, str]:
    """Write `report.html` and `report.md` (+ `report_assets/*.svg`) into a build's output folder.
    Raises FileNotFoundError for a folder without manifest.json, ReportWriteError for one it cannot write."""
    output_dir = str(output_dir)
    if is_haystack_folder(output_dir):   # a `vdata haystack` benchmark: its own short report
        data = haystack_report_data(output_dir)
        try:
            return write_haystack_files(output_dir, data, HTML_NAME, MD_NAME)
        except OSError as e:
            raise ReportWriteError(f"cannot write {e.filename or output_dir} ({e.strerror or type(e).__name__})") from e
    run = load_run(output_dir)
    sections = build_sections(run)
    try:
        return _write_files(output_dir, run, sections)
    except OSError as e:   # named here, after the reading: a read error never reads as a write error
        path = e.filename2 or e.filename or output_dir   # os.replace names its target second
        raise ReportWriteError(f"cannot write {path} ({e.strerror or type(e).__name__})") from e


def _write_files(output_dir: str, run: RunData, sections: list[Section]) -> tuple[str, str]:
    assets = os.path.join(output_dir, ASSETS_DIR)
    if os.path.isdir(assets):   # the folder is the report's own: stale plots of an earlier run go
        try:
            shutil.rmtree(assets)
        except OSError as e:   # rmtree names the entry relative to its folder: name the folder instead
            e.filename, e.filename2 = assets, None
            raise
    image_paths = {}
    figures = [s for s in sections if s.plot]
    if figures:
        os.makedirs(assets)
    for i, s in enumerate(figures, 1):
        rel = f"{ASSETS_DIR}/{i:02d}_{s.key}.svg"
        Path(output_dir, rel).write_bytes(s.plot.svg)
        image_paths[s.key] = rel
    thumb_paths = []
    for s in sections:
        for i, card in enumerate(s.cards):
            thumb_paths.append([])
            for j, thumb in enumerate(card.thumbs):
                rel = f"{ASSETS_DIR}/samples/{i:02d}_{j}.jpg"
                os.makedirs(os.path.join(output_dir, ASSETS_DIR, "samples"), exist_ok=True)
                Path(output_dir, rel).write_bytes(thumb.jpeg)
                thumb_paths[-1].append(rel)
    html_path = os.path.join(output_dir, HTML_NAME)
    md_path = os.path.join(output_dir, MD_NAME)
    _write_atomic(html_path, render_html(run, sections))
    _write_atomic(md_path, render_markdown(run, sections, image_paths, thumb_paths))
    return html_path, md_path


def _write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    Path(tmp).write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@click.command("report")
@click.argument("out_dir", type=BuildLocation())
def report_cmd(out_dir):
    """Write report.html and report.md for the finished build in OUT_DIR (a folder, or the s3:// / gs:// URL
    of a build written there: read through a local copy of its tables, the report put back at the URL)."""
    try:
        local = readable_build(out_dir)
        html_path, md_path = write_report(local)
        if local != out_dir:
            put_report(local, out_dir)
            html_path, md_path = (f"{out_dir.rstrip('/')}/{os.path.basename(p)}" for p in (html_path, md_path))
    except (FileNotFoundError, ReportWriteError, RemoteBuildError) as e:   # one line and exit 1, not a traceback
        raise click.ClickException(str(e)) from None
    click.echo(html_path)
    click.echo(md_path)
