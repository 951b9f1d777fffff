"""LITA (ActivityNet-RTL style): a JSON object keyed by visual id, `{duration, QA: [{q, a}]}`, times
in the answers written `<12.30>` (seconds in angle brackets), as LITA's release files store them.

Layout confirmed in NVlabs/LITA `lita/dataset/temporal_reasoning_dataset.py`
(`TemporalReasoningDataset_activitynet.init_list_data_dict`: `data_dict[vid]['duration']` and
`['QA']` with `q`/`a`; `format_temporal_reasoning` turns every `<seconds>` in an answer into the time
token `<t{round((T-1) * t / duration)}>` with `TIME_TOKEN_TEMPLATE = "<t{t}>"` from
`lita/constants.py`). With `--time lita[:T]` the tokens are written directly (the loader leaves them
as they are). Keys are the visual's stem (the video id, or the clip id of a cut clip), so each key's
`duration` is the length of what the model sees; videos are at `<dest>/videos/<key>.mp4`.
"""
from __future__ import annotations

from ..base import ExportOptions, ExportResult, prepare, safe_name
from ..source import BuildDir
from ..timefmt import parse_time_format
from .common import add_json, readable, release_items, release_options, result_for


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    notes: list[str] = []
    if parse_time_format(opts.time_format)[0] != "lita":
        opts = release_options(opts, "bracketed", notes)
    name = safe_name(opts.name or build.name)
    # LITA's loader opens `<video folder>/<key>.mp4`: every visual flat in videos/, as an mp4
    prepared, planner, skipped = prepare(build, dest, opts, flat=True, force_mp4=True,
                                         items=release_items(build, opts.tasks))
    data: dict[str, dict] = {}
    for p, q, a in readable(prepared, skipped):
        entry = data.setdefault(p.visual.stem, {"duration": float(p.visual.duration_s or 0.0), "QA": []})
        entry["QA"].append({"q": q, "a": a})
    result = result_for("lita", planner, skipped, notes)
    fname = f"{name}_lita.json"
    add_json(result, planner, fname, data, sum(len(v["QA"]) for v in data.values()))
    return result
