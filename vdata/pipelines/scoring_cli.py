"""`vdata score`: the command, and the report as Markdown (the JSON is `scoring.score_build`'s dict)."""
from __future__ import annotations

import json
import os

import click

from .remote import BuildLocation, RemoteBuildError, readable_build
from .scoring import PREDICTIONS_FORMAT, circular_questions, score_build

JSON_NAME = "score.json"
MD_NAME = "score.md"


def _cell(v) -> str:
    return "–" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)


def _table(head: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows], ""]


def render_markdown(report: dict) -> str:
    out = [f"# Scores: {report['name']}", "",
           f"Predictions `{report['predictions']}`; times read as seconds in the "
           f"{'shown clip or video' if report['times'] == 'visual' else 'source video'}.", ""]
    summary = []
    mcq, grd, opn, cg = report["mcq"], report["grounding"], report["open"], report["cg_bench"]
    if mcq:
        summary.append(["multiple choice", mcq["items"], mcq["answered"], "accuracy", mcq["accuracy"]])
        if mcq["circular"]:
            c = mcq["circular"]
            summary.append(["multiple choice", c["items"], c["complete"], "CircularEval accuracy", c["accuracy"]])
        if mcq["single_frame"]:
            sf = mcq["single_frame"]
            summary.append(["multiple choice", mcq["items"] - sf["flagged"], "",
                            f"accuracy without the {sf['flagged']} item(s) one frame answers", sf["accuracy_without_flagged"]])
    if grd:
        summary.append(["grounding", grd["items"], grd["answered"], "mIoU", grd["miou"]])
        summary += [["grounding", grd["items"], grd["answered"], f"R@{t}", v] for t, v in grd["recall"].items()]
    if report.get("moment"):   # chapter grounding: a start found within the tolerance of a gold one
        mom = report["moment"]
        summary.append(["moment", mom["items"], mom["answered"], "within 3 s of a gold moment", mom["within_3s"]])
    if opn:
        summary.append(["open-ended", opn["items"], opn["answered"], "token F1", opn["token_f1"]])
        summary.append(["open-ended", opn["items"], opn["answered"], "exact match", opn["exact_match"]])
    if cg["white_box"]:
        w = cg["white_box"]
        summary.append(["CG-Bench white-box", w["items"], "", "clue mIoU", w["clue_miou"]])
        summary += [["CG-Bench white-box", w["items"], "", f"clue R@{t}", v] for t, v in w["recall"].items()]
    if cg["black_box"]:
        b = cg["black_box"]
        summary.append(["CG-Bench black-box", b["items"], "", "accuracy from the clues only", b["clue_only_accuracy"]])
        summary.append(["CG-Bench black-box", b["items"], "", "accuracy from the whole video", b["full_video_accuracy"]])
    out += ["## Summary", "", *_table(["kind", "items", "answered", "metric", "score (%)"], summary)]
    for title, section, metric in (("Multiple choice", mcq, "accuracy"), ("Grounding", grd, "miou"),
                                   ("Moments", report.get("moment"), "within_3s"), ("Open-ended", opn, "token_f1")):
        if not section:
            continue
        for by in ("task", "question_type"):
            rows = [[name, v["items"], v[metric]] for name, v in section[f"by_{by}"].items()]
            out += [f"## {title} by {by.replace('_', ' ')}", "", *_table([by, "items", metric], rows)]
    problems = report["problems"]
    out += ["## Problems", ""]
    if problems:
        out += _table(["reason", "count", "examples"],
                      [[k, v["count"], ", ".join(map(str, v["examples"]))] for k, v in problems.items()])
    else:
        out += ["None: every item answered, every prediction well formed.", ""]
    return "\n".join(out)


@click.command("score", epilog="\b\nPREDICTIONS (JSONL):\n" + PREDICTIONS_FORMAT)
@click.argument("build_dir", type=BuildLocation())
@click.argument("predictions", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help=f"write {JSON_NAME} and {MD_NAME} into this folder (else the Markdown goes to stdout)")
@click.option("--times", type=click.Choice(["visual", "video"]), default="visual", show_default=True,
              help="predicted times count from the start of the shown clip/video (visual) or of the source video")
@click.option("--single-frame-max", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="builds with the single_frame stage: items whose one-frame share is above this are flagged and "
                   "MCQ accuracy is also given without them")
@click.option("--circular-questions", "circular_path", type=click.Path(dir_okay=False),
              help="instead of scoring, write every MCQ at every option rotation (JSONL) for CircularEval")
def score_cmd(build_dir, predictions, out_dir, times, single_frame_max, circular_path):
    """Score PREDICTIONS against the benchmark built in BUILD_DIR (a `vdata build` output folder):
    multiple-choice accuracy and CircularEval, grounding mIoU and R@{0.3,0.5,0.7}, open-ended token F1,
    CG-Bench white-box (clue mIoU) and black-box (answer from the clues only) figures, each per task and
    per question type. Malformed predictions (no id, an unknown id, no option letter, a reversed or
    non-numeric interval) and unanswered items are counted by reason under Problems and scored as wrong."""
    from vdata.exporters.source import ExportError

    try:
        build_dir = readable_build(build_dir)   # a benchmark built into a bucket, through a local copy of its tables
        if circular_path:
            rows = circular_questions(build_dir)
            with open(circular_path, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            click.echo(f"wrote {len(rows)} rotated questions to {circular_path}")
            return
        if not predictions:
            raise click.UsageError("PREDICTIONS is required (unless --circular-questions)")
        report = score_build(build_dir, predictions, times, single_frame_max)
    except (ExportError, RemoteBuildError) as e:
        raise click.ClickException(str(e))
    md = render_markdown(report)
    if not out_dir:
        click.echo(md)
        return
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, JSON_NAME), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(out_dir, MD_NAME), "w") as f:
        f.write(md)
    click.echo(os.path.join(out_dir, JSON_NAME))
    click.echo(os.path.join(out_dir, MD_NAME))
