"""`vdata haystack ...`: build, plan, rebuild and score synthetic needle-in-a-haystack benchmarks.

Wired into the main CLI with `main.add_command(haystack_cmd)`.
"""
from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from vdata.schemas.config import ConfigError

console = Console(stderr=True)


def _fail(where: str, e: Exception) -> None:
    console.print(f"[red]config error[/] in {where}:\n{e}")
    sys.exit(2)


@click.group("haystack")
def haystack_cmd():
    """Synthetic long-video benchmarks: needles hidden in haystack videos, answers known by construction."""


@haystack_cmd.command("build")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--render", type=click.Choice(["videos", "manifest"]), help="override haystack.render")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="override output.dir")
@click.option("--limit", type=int, help="build only the first N items of the grid")
@click.option("--no-verify", is_flag=True, help="skip the decode check of rendered items")
@click.option("--quiet", is_flag=True, help="no per-item log lines")
def build_cmd(config, render, out_dir, limit, no_verify, quiet):
    """Plan, render, verify and write the benchmark of CONFIG."""
    from .run import build_haystack

    try:
        result = build_haystack(config, render=render, out_dir=out_dir, limit=limit,
                                verify=False if no_verify else None,
                                log=None if quiet else (lambda m: console.print(m, highlight=False)))
    except ConfigError as e:
        _fail(config, e)
    _print_table(result.summary["table"], f"{result.kept} items, {result.questions} questions in {result.out_dir}")
    if result.rejected:
        console.print("dropped by verification: " + ", ".join(f"{k}: {v}" for k, v in result.rejected.items()))
    if result.skipped_cells:
        console.print(f"{len(result.skipped_cells)} grid cell(s) not built (see summary.md)")
    if result.reused:
        console.print(f"{result.reused} item video(s) reused from an earlier run into this folder")
    t = result.timings
    if "render_video_s_per_s" in t:
        console.print(f"rendered {t['rendered_video_s']:.0f} s of video at {t['render_video_s_per_s']} s/s; "
                      f"verification {t.get('verify_s_per_item', 0)} s/item")
    for name, path in result.paths.items():
        console.print(f"  {name}: {path}")
    if result.planned and not result.kept:
        console.print(f"[red]error[/]: none of the {result.planned} planned item(s) was kept "
                      "(see the reasons above and rejects.parquet)")
        sys.exit(1)


@haystack_cmd.command("plan")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
def plan_cmd(config):
    """Validate CONFIG and show the items a build would make; renders nothing."""
    from .run import plan_haystack

    try:
        plan = plan_haystack(config)
    except ConfigError as e:
        _fail(config, e)
    _print_table(plan["table"], f"{plan['items']} items, {plan['questions']} questions, "
                                f"{plan['video_seconds']:.0f} s of video from {plan['sources']} source(s)")
    for source in plan["skipped_sources"]:
        click.echo(f"skipped source {source['path']}: {source['message']} ({source['reason']})")
    for cell, n in plan["skipped_cells"].items():
        click.echo(f"not built: {cell} (x{n})")


@haystack_cmd.command("rebuild")
@click.argument("bench_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--search", "search", multiple=True, required=True, type=click.Path(exists=True),
              help="a folder or file holding the sources and needle files (repeatable); matched by content")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="write here (default: BENCH_DIR)")
@click.option("--verify", is_flag=True, help="decode-check every rebuilt item")
def rebuild_cmd(bench_dir, search, out_dir, verify):
    """Re-render BENCH_DIR's videos from its manifest, byte-for-byte, from local copies of its inputs.
    Each rebuilt item is checked against the original's digests (bytes, else decoded frames and samples);
    any item that differs is listed and the exit status is 1."""
    from .run import rebuild_haystack

    try:
        result = rebuild_haystack(bench_dir, list(search), out_dir=out_dir, verify=verify)
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]cannot rebuild[/]: {e}")
        sys.exit(2)
    click.echo(f"rebuilt {result.kept}/{result.planned} item videos into {result.out_dir}"
               + (f"; failed: {dict(result.rejected)}" if result.rejected else ""))
    same = result.reproduction
    click.echo(f"against the original: {same['bytes']} byte-identical, {same['frames']} with identical decoded "
               f"frames only, {same['differs']} differing, {same['unrecorded']} without a recorded digest")
    if result.differing:
        click.echo("differing items: " + ", ".join(result.differing))
        sys.exit(1)


@haystack_cmd.command("score")
@click.argument("items", type=click.Path(exists=True, dir_okay=False))
@click.argument("predictions", type=click.Path(exists=True, dir_okay=False))
@click.option("--form", type=click.Choice(["mcq", "open"]), default="mcq", show_default=True)
def score_cmd(items, predictions, form):
    """Score PREDICTIONS (JSONL of {question_id | id | sample_id, prediction}) against ITEMS (items.parquet).

    Unknown, duplicate, null and missing predictions are counted under `problems` in the report (and said
    on stderr); a file none of whose ids is a question is an error (exit 2)."""
    from .scoring import load_predictions, score_predictions

    try:
        report = score_predictions(items, load_predictions(predictions), form)
    except ValueError as e:
        console.print(f"[red]error[/]: {e}")
        sys.exit(2)
    click.echo(json.dumps(report, indent=1))


def _print_table(rows: list[dict], title: str) -> None:
    types = sorted({r["needle_type"] for r in rows})
    t = Table(title=title)
    for col in ["task", "length"] + types + ["total"]:
        t.add_column(col, justify="left" if col in ("task", "length") else "right")
    count = {(r["task"], r["length_s"], r["needle_type"]): r["items"] for r in rows}
    for task in sorted({r["task"] for r in rows}):
        for length in sorted({r["length_s"] for r in rows}):
            cells = [count.get((task, length, nt), 0) for nt in types]
            t.add_row(task, f"{length:g}s", *[str(c) for c in cells], str(sum(cells)))
    console.print(t)
