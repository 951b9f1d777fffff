"""`vdata export` (attached to the main CLI with `main.add_command`)."""
from __future__ import annotations

import sys

import click

from vdata.schemas.config import SPLIT_NAMES

from . import FORMATS, MEDIA_MODES, TIME_FORMATS


def fail(message: str) -> None:
    """Print a one-line error and exit 2 (the CLI's usage-error code)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def time_spec(ctx, param, value):
    """`--time` callback: `name` or `name:bins` (lita:50); TIME_FORMATS' membership test accepts both, a
    click.Choice only the names. `vdata push` uses it too."""
    if value not in TIME_FORMATS:
        raise click.BadParameter(f"{value!r}: use one of {', '.join(TIME_FORMATS)} (lita and grounded_videollm "
                                 "also as name:bins, e.g. lita:100)")
    return value


@click.command("export")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="target format")
@click.option("--dest", required=True, type=click.Path(file_okay=False), help="folder to write the export into")
@click.option("--time", "time_format", default="seconds", show_default=True, callback=time_spec,
              help="how times are written in texts: " + " | ".join(TIME_FORMATS)
              + " (token formats take ':bins', e.g. lita:100; see vdata/exporters/timefmt.py)")
@click.option("--media", type=click.Choice(MEDIA_MODES), default="link", show_default=True,
              help="copy videos into DEST, symlink them, or reference them where they are")
@click.option("--task", "tasks", multiple=True, help="only samples of this task (repeatable)")
@click.option("--split", "splits", multiple=True, type=click.Choice(SPLIT_NAMES),
              help="only rows of this split (repeatable; default: every split)")
@click.option("--name", help="dataset name used in file names (default: the build's name)")
@click.option("--video-token", type=click.Choice(["<image>", "<video>"]),
              help="llava only: the token opening the first human turn (default <image>; <video> for Video-LLaVA)")
def export_cmd(out_dir, fmt, dest, time_format, media, tasks, splits, name, video_token):
    """Render the finished build in OUT_DIR as FORMAT into DEST."""
    from . import ExportError, export

    if video_token and fmt != "llava":   # no other exporter takes it (a script switching --format kept it: h26 F15)
        raise click.UsageError(f"--video-token applies to --format llava only, not {fmt}")
    try:
        result = export(out_dir, dest, fmt, time_format=time_format, media=media, tasks=tasks or None, name=name,
                        splits=splits or None, **({"video_token": video_token} if video_token else {}))
    except (ExportError, ValueError) as e:
        fail(str(e))
    click.echo(result.summary())


# `push` and `card` need vdata.hub (a floor above this package): they live in vdata/cli_hub.py.
export = export_cmd
