"""`vdata push` and `vdata card`: the Hub commands (attached to the main CLI with `main.add_command`).

They sit on the top floor, next to cli.py, because they call vdata.hub; `vdata export` is defined with the
exporters (vdata/exporters/cli.py) since it needs nothing above them, and attached from here with its
OUT_DIR also a URL: reading a build in object storage needs vdata/pipelines/remote.py, a floor above the
exporters. Every command here takes a build at a URL through a local copy of its tables (`readable_build`).
"""
from __future__ import annotations

import sys

import click

from vdata.exporters import TIME_FORMATS
from vdata.exporters.cli import export_cmd, fail, time_spec
from vdata.hub.published import ALLOW_FOREIGN_HELP, cli_push
from vdata.pipelines.remote import BuildLocation, RemoteBuildError, put_card, readable_build
from vdata.schemas.config import SPLIT_NAMES


def _local_build(out_dir: str) -> str:
    """OUT_DIR as a folder (a build at a URL mirrored here, see `readable_build`), or a one-line error."""
    try:
        return readable_build(out_dir)
    except RemoteBuildError as e:
        fail(str(e))


@click.command("push")
@click.argument("out_dir", type=BuildLocation())
@click.option("--repo", "repo_id", required=True, help="dataset repo id, user/name")
@click.option("--private", is_flag=True, help="make the repo private (an existing public repo is made private "
              "before anything is uploaded)")
@click.option("--format", "fmt", type=click.Choice(["parquet", "llava", "sharegpt", "lmms-eval"]), default="parquet",
              show_default=True, help="Hub layout")
@click.option("--endpoint", help="Hub endpoint URL (default: HF_ENDPOINT or huggingface.co)")
@click.option("--time", "time_format", default="seconds", show_default=True, callback=time_spec,
              help="how times are written in texts (llava / sharegpt / lmms-eval): " + " | ".join(TIME_FORMATS)
              + " (token formats take ':bins', e.g. lita:100), as in `vdata export --time`")
@click.option("--staging", "staging_dir", type=click.Path(file_okay=False),
              help="where the upload folder is assembled, emptied first (default OUT_DIR/_hub/FORMAT)")
@click.option("--split", "splits", multiple=True, type=click.Choice(SPLIT_NAMES),
              help="only rows of this split, in every file pushed (repeatable), as `vdata export --split`; default, "
              "where the build holds videos out: train in the llava / LLaMA-Factory files, test in the lmms-eval "
              "tasks, every split (kept apart) in the Parquet configs")
@click.option("--allow-foreign-files", "allow_foreign", is_flag=True, help=ALLOW_FOREIGN_HELP)
@click.option("--source-meta-key", "source_meta_keys", multiple=True, metavar="KEY",
              help="publish only this key of each row's source_meta, the input rows' extra columns (repeatable; "
                   "default: every key, credential-shaped values masked; push lists the keys and those holding "
                   "e-mail addresses)")
def push_cmd(out_dir, repo_id, private, fmt, endpoint, time_format, staging_dir, splits, allow_foreign,
             source_meta_keys):
    """Upload the build in OUT_DIR to the Hub with a generated dataset card.

    The token comes from HF_TOKEN or `hf auth login`; it is never printed. Re-running resumes: files
    already on the Hub are skipped; files an earlier vdata push wrote and this one does not are deleted,
    and no other file of the repo is touched.

    \b
    Exit status: 0 pushed (or nothing changed); 2 nothing pushed, fix the command: a bad --repo, no token,
    a build that cannot be pushed, the Hub refusing the token, or a repo holding files vdata did not write;
    4 the upload failed (network, Hub error): the repo may hold part of it, run the same command again.
    """
    from vdata.hub import push

    sys.exit(cli_push(push, _local_build(out_dir), echo=click.echo, repo_id=repo_id, private=private, fmt=fmt,
                      endpoint=endpoint, time_format=time_format, staging_dir=staging_dir, splits=splits,
                      allow_foreign=allow_foreign, source_meta_keys=source_meta_keys))


@click.command("card")
@click.argument("out_dir", type=BuildLocation())
@click.option("--output", "path", type=click.Path(dir_okay=False), help="file to write (default OUT_DIR/README.md)")
@click.option("--repo", "repo_id", help="repo id to use in the loading examples")
def card_cmd(out_dir, path, repo_id):
    """Write the dataset card (README.md) of the build in OUT_DIR (a folder, or the URL of a build written
    to object storage: its card is put back there)."""
    from vdata.exporters import ExportError
    from vdata.hub import HubError, write_card

    local = _local_build(out_dir)
    try:
        written = write_card(local, path, repo_id=repo_id)
        if local != out_dir and path is None:
            written = put_card(written, local, out_dir)[0]
        click.echo(written)
    except (ExportError, HubError) as e:   # unfinished build, unwritable path: one line, exit 2
        fail(str(e))


def _export_local(out_dir, **options):
    export_cmd.callback(_local_build(out_dir), **options)


# `vdata export` as vdata/exporters/cli.py defines it, its OUT_DIR also the URL of a build in object storage
export = click.Command("export", callback=_export_local, short_help=export_cmd.short_help,
                       help=export_cmd.help + "\n\nOUT_DIR and DEST may be URLs (s3://, gs://): a build there is read "
                       "through a local copy of its tables, an export to a URL is rendered here and put there.",
                       params=[click.Argument(["out_dir"], type=BuildLocation()), *export_cmd.params[1:]])
push = push_cmd
card = card_cmd
