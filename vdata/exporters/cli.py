"""`vdata export`, `vdata push` and `vdata card` (attached to the main CLI with `main.add_command`)."""
from __future__ import annotations

import sys

import click

from . import FORMATS, MEDIA_MODES, TIME_FORMATS


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.command("export")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="target format")
@click.option("--dest", required=True, type=click.Path(file_okay=False), help="folder to write the export into")
@click.option("--time", "time_format", type=click.Choice(TIME_FORMATS), default="seconds", show_default=True,
              help="how times are written in texts: '12.3 - 20.5 seconds', relative 00-99, or frame indices")
@click.option("--media", type=click.Choice(MEDIA_MODES), default="link", show_default=True,
              help="copy videos into DEST, symlink them, or reference them where they are")
@click.option("--task", "tasks", multiple=True, help="only samples of this task (repeatable)")
@click.option("--name", help="dataset name used in file names (default: the build's name)")
def export_cmd(out_dir, fmt, dest, time_format, media, tasks, name):
    """Render the finished build in OUT_DIR as FORMAT into DEST."""
    from . import ExportError, export

    try:
        result = export(out_dir, dest, fmt, time_format=time_format, media=media, tasks=tasks or None, name=name)
    except (ExportError, ValueError) as e:
        _fail(str(e))
    click.echo(result.summary())


@click.command("push")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--repo", "repo_id", required=True, help="dataset repo id, user/name")
@click.option("--private", is_flag=True, help="create the repo private")
@click.option("--format", "fmt", type=click.Choice(["parquet", "llava", "sharegpt", "lmms-eval"]), default="parquet",
              show_default=True, help="Hub layout")
@click.option("--endpoint", help="Hub endpoint URL (default: HF_ENDPOINT or huggingface.co)")
@click.option("--time", "time_format", type=click.Choice(TIME_FORMATS), default="seconds", show_default=True)
@click.option("--staging", "staging_dir", type=click.Path(file_okay=False),
              help="where the upload folder is assembled (default OUT_DIR/_hub/FORMAT; kept for resuming)")
def push_cmd(out_dir, repo_id, private, fmt, endpoint, time_format, staging_dir):
    """Upload the build in OUT_DIR to the Hub with a generated dataset card.

    The token comes from HF_TOKEN or `hf auth login`; it is never printed. Re-running resumes: files
    already on the Hub are skipped.
    """
    from vdata.exporters import ExportError
    from vdata.hub import HubError, push

    try:
        res = push(out_dir, repo_id, private=private, format=fmt, endpoint=endpoint, time_format=time_format,
                   staging_dir=staging_dir, log=lambda m: click.echo(m, err=True))
    except (HubError, ExportError) as e:
        _fail(str(e))
    except Exception as e:   # HTTP errors from the Hub: say which call failed, never echo headers
        _fail(f"upload failed ({type(e).__name__}): {e}")
    click.echo(f"pushed {res.files} file(s) to {res.url} (commit {res.commit[:12]}); "
               f"configs: {', '.join(c['config_name'] for c in res.configs)}")


@click.command("card")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--output", "path", type=click.Path(dir_okay=False), help="file to write (default OUT_DIR/README.md)")
@click.option("--repo", "repo_id", help="repo id to use in the loading examples")
def card_cmd(out_dir, path, repo_id):
    """Write the dataset card (README.md) of the build in OUT_DIR."""
    from vdata.exporters import ExportError
    from vdata.hub import write_card

    try:
        click.echo(write_card(out_dir, path, repo_id=repo_id))
    except ExportError as e:
        _fail(str(e))


# names the lead attaches: main.add_command(export), main.add_command(push), main.add_command(card)
export = export_cmd
push = push_cmd
card = card_cmd
