"""Publish a finished build on the Hugging Face Hub, with a generated dataset card.

`push()` exports the build into an emptied staging folder (`<out>/_hub/<format>/` by default), writes the
card as `README.md`, creates the dataset repo and uploads the folder with `HfApi.upload_folder`
(huggingface_hub 2.x: several commits for large folders, resumable by re-running; the Hub skips the files
it already holds, so a re-run uploads only what changed). Files an earlier push wrote (its record,
`.vdata-push.json`) that this push does not write are deleted by the same upload, and only those; a repo
holding files vdata did not write is refused unless `allow_foreign_files` (`hub/repo_files.py`). The token
comes from `token=`, `HF_TOKEN`, or `hf auth login`; it is never printed or written anywhere. Before the
upload, every staged file has its credential-shaped strings masked (a `?token=` input URL, an `hf_` token in
`source_meta`) and `source_meta` keeps only `source_meta_keys` when given (`hub/scrub.py`); push says so.

Layouts by `--format`:
- `parquet` (default): canonical records in `data/<subset>/<split>-*.parquet` (one `datasets` config per
  subset, its splits those of the build; a sample build's frames once per clip in the `clips` config,
  which samples refer to by `clip_id`; the card's `dataset_info` types `frames` as images), videos
  as files in `videos/<id[:2]>/` (folders well under 10k files). Next to them, the
  LLaMA-Factory files (`dataset_info.json` + `<name>_<subset>.json`) and an lmms-eval task folder
  (`<name>_*.yaml`, `utils.py`, `lmms_eval/*.parquet`) that use the same videos, so one repo loads in
  `datasets`, LLaMA-Factory and lmms-eval. `path` / `source_uri` are relative to the folder of the build's
  local inputs (`parquet.relative_source_columns`): no path of this machine goes public. A `vdata haystack`
  benchmark: its items as the `haystack` config (split `test`), its videos, and its lmms-eval task written
  for this repo (`hub/haystack_task.py`: `lmms_eval/<task>/`, the default config `lmms_eval`, zip shards);
  its VLMEvalKit TSV stays in the benchmark folder, as its card says.
- `llava`: the LLaVA-Video JSON files, videos as files.
- `sharegpt`: the LLaMA-Factory files, videos as files.
- `lmms-eval`: the task folder with videos as zip shards (`videos_000.zip`, …), which lmms-eval
  downloads and extracts itself (`dataset_kwargs: {video: True, cache_dir: …}`).

Splits (a build with `output.splits` holds videos out): the Parquet configs keep every split apart; the
training files (llava, LLaMA-Factory) hold the `train` rows only and the lmms-eval tasks the `test` rows
only, as `vdata export --split` writes them; `splits=` (`vdata push --split`) takes those splits in every
file instead. Push logs one line saying which splits went where (`split_note`).
"""
from __future__ import annotations

import os
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources

from vdata.exporters import EXPORT_LEDGER, ExportError, export, open_build
from vdata.exporters.base import NothingToExport
from vdata.exporters.hf_local import CardFacts, gather_facts, local_card_data
from vdata.exporters.lmms_eval import task_name
from vdata.exporters.parquet import PLACEHOLDER_NOTE
from vdata.exporters.source import SUBSETS, BuildDir
from vdata.exporters.source import split_of_file
from vdata.hub import published as rf
from vdata.hub.card_settings import _fmt_settings, _thresholds, rethresholded  # noqa: F401  (_thresholds: tests)
from vdata.hub.published import HubError, UploadFailed, llava_config, llava_usage, published_config
from vdata.hub.scrub import scrub_folder
from vdata.hub.splits import carried_splits, holds_videos_out, split_label, split_note
from vdata.schemas.secrets import config_text_secrets, redact

PUSH_FORMATS = ("parquet", "llava", "sharegpt", "lmms-eval")
ZIP_SHARD_BYTES = 2 * 1024**3        # lmms-eval extracts each zip on its own; 2 GB keeps each download retryable



# --- secrets ---------------------------------------------------------------------------------------

def redact_config(text: str, secrets=()) -> str:
    """`text` with secret values masked: the given ones and, when `text` is a config, the literal values
    of its SecretStr-typed teacher fields (`vdata.schemas.secrets`: by type, never by key name, so
    `max_tokens` and every other setting stay as written and the YAML stays valid). `${VAR}` references
    are kept: they tell readers what to set."""
    return redact(text, [*secrets, *config_text_secrets(text)])


def _known_secrets(token: str | None = None) -> list[str]:
    """The hub credential of this machine (what `vdata push` would send), to keep out of the card."""
    from huggingface_hub import get_token

    return [t for t in (token, get_token()) if t]


# --- the dataset card (its facts: `gather_facts` in vdata/exporters/hf_local.py) ----------------------

def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                         (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "n>10M"


def _md(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _card_template():
    """assets/dataset_card.md as a Jinja2 template. Rendered here rather than by
    `DatasetCard.from_template`, which builds a bare `jinja2.Template`: the card needs trim_blocks so
    its Markdown tables stay readable in the template."""
    import jinja2

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["md"] = _md
    return env.from_string(resources.files("vdata").joinpath("assets/dataset_card.md").read_text(encoding="utf-8"))


def dataset_card(build: BuildDir, *, repo_id: str | None = None, format: str = "parquet",
                 configs: list[dict] | None = None, secrets=(), facts: CardFacts | None = None,
                 dataset_info: list[dict] | None = None, local: bool = False, layout_rows: dict | None = None,
                 time_format: str = "seconds") -> str:
    """The README.md of the dataset: `DatasetCardData` metadata (license, tasks, configs) over the prose
    of assets/dataset_card.md, read back through `DatasetCard` (which checks the metadata block)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    f = facts or gather_facts(build)
    secrets = list(secrets) + _known_secrets() + config_text_secrets(f.config_text)
    total = sum(f.rows_by_subset.values())
    tasks = {"video-text-to-text"}
    if f.rows_by_subset.get("mcq") or f.rows_by_subset.get("open_qa") or f.rows_by_subset.get("haystack"):
        tasks.add("visual-question-answering")
    data = DatasetCardData(license=f.license, pretty_name=f.name, task_categories=sorted(tasks),
                           tags=["video", "synthetic", "vdata"], size_categories=[_size_category(max(total, f.rows))],
                           configs=configs or None, dataset_info=dataset_info or None)
    stats = {s.get("stage"): s for s in f.stages}
    rt = rethresholded(f.manifest, f.stage_settings)   # a `vdata rethreshold --write-to` folder: the values applied
    pipeline = [{"name": name,
                 "settings": "not recorded" if kw is None else
                 _md(redact_config(_fmt_settings(kw), secrets) + rt.marker(name)),
                 "rows_in": stats.get(name, {}).get("rows_in", ""), "rows_out": stats.get(name, {}).get("rows_out", ""),
                 "dropped": ", ".join(f"{k}: {v}" for k, v in sorted((stats.get(name, {}).get("rejects") or {}).items()))
                 or "-"} for name, kw in rt.stage_settings]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f.name)
    text = _card_template().render(
        card_data=data.to_yaml(), f=f, total=total, repo=repo_id or f"<user>/{f.name}", format=format,
        subsets=[(s, f.rows_by_subset[s]) for s in SUBSETS if s in f.rows_by_subset], pipeline=pipeline,
        thresholds=rt.thresholds(), unrecorded=any(kw is None for _, kw in f.stage_settings), rethreshold=rt.note,
        reject_rows=f.manifest.get("rejects", sum(f.rejects_by_reason.values())), placeholder_note=PLACEHOLDER_NOTE,
        config_text=rt.config_comment() + published_config(redact_config(f.config_text, secrets).rstrip(), local)
        if f.config_text else "",
        versions=f.manifest.get("versions") or {}, examples=[(s, f.examples[s]) for s in SUBSETS if f.examples.get(s)],
        configs=configs or [], config_names=[c.get("config_name", "default") for c in configs or []],
        first_config=(configs or [{}])[0].get("config_name", "default") if configs else "default",
        first_split=next((d["split"] for d in ((configs or [{}])[0].get("data_files") or []) if isinstance(d, dict)
                          and d.get("split")), "test" if format == "lmms-eval" else "train"), name=name, task=task_name(name),
        local=local, time_format=time_format)
    if format == "llava":
        text = llava_usage(text, repo_id or f"<user>/{f.name}", name, layout_rows or {})
    text = str(DatasetCard(text))
    return redact(text, secrets)



def write_card(out_dir: str, path: str | None = None, repo_id: str | None = None) -> str:
    """`vdata card OUT`: write the dataset card for a build (default `OUT/README.md`). Its `configs:`
    name the build's own files (`vdata.exporters.hf_local`), so `datasets.load_dataset(OUT)` keeps
    working; `vdata push` writes the card of the Hub layout into the staging folder instead."""
    build = open_build(out_dir, allow_empty=True)   # a build that kept nothing has a card too: it says so
    facts = gather_facts(build)
    keys = local_card_data(build)
    text = dataset_card(build, repo_id=repo_id, configs=keys["configs"], facts=facts, dataset_info=keys["dataset_info"],
                        local=True)
    path = path or os.path.join(build.path, "README.md")
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as e:   # a read-only build folder, a folder in the way: one line naming the path
        raise HubError(f"cannot write {path} ({e.strerror or type(e).__name__}); give another file with --output") \
            from None
    return path


# --- staging ---------------------------------------------------------------------------------------

@dataclass
class Staged:
    folder: str
    configs: list
    ignore: list
    files: int
    notes: list
    dataset_info: list = field(default_factory=list)   # README `dataset_info:` (features) per config
    split_note: str | None = None                       # the splits pushed, where the build holds videos out
    carried: dict = field(default_factory=dict)         # {layout: the splits its files hold (None: every one)}
    warnings: list = field(default_factory=list)        # lines push logs (a side layout not written, and why)
    rows: dict = field(default_factory=dict)            # records per file of a llava / sharegpt / lmms-eval push


def zip_videos(folder: str, max_bytes: int = ZIP_SHARD_BYTES) -> list[str]:
    """Pack `<folder>/videos/**` into `videos_000.zip`, … (stored, not deflated: video is compressed).

    Paths inside the archives keep the `videos/` prefix, so extracting every shard into one folder gives
    the paths the records name. Returns the archive names.
    """
    root = os.path.join(folder, "videos")
    files = []
    for dp, _, fn in os.walk(root, followlinks=True):
        files += [os.path.join(dp, x) for x in fn]
    files.sort()
    for old in os.listdir(folder):
        if re.fullmatch(r"videos_\d{3}\.zip", old):
            os.remove(os.path.join(folder, old))
    shards, cur, size = [], [], 0
    for p in files:
        s = os.path.getsize(p)
        if cur and size + s > max_bytes:
            shards.append(cur)
            cur, size = [], 0
        cur.append(p)
        size += s
    if cur:
        shards.append(cur)
    names = []
    for i, group in enumerate(shards):
        name = f"videos_{i:03d}.zip"
        with zipfile.ZipFile(os.path.join(folder, name), "w", zipfile.ZIP_STORED) as z:
            for p in group:
                # fixed timestamps: the same videos give byte-identical zips, so a re-push uploads nothing
                info = zipfile.ZipInfo(os.path.relpath(p, folder), date_time=(2020, 1, 1, 0, 0, 0))
                with open(p, "rb") as src:
                    z.writestr(info, src.read())
        names.append(name)
    return names


def stage(out_dir: str, folder: str, format: str = "parquet", repo_id: str | None = None,
          time_format: str = "seconds", splits=None) -> Staged:
    """Export the build into `folder` in the Hub layout of `format` (see the module docstring).

    splits: only the rows of these splits in every file (`vdata export --split`); None: each layout the
    split its readers take, where the build holds videos out (`carried_splits`)."""
    if format not in PUSH_FORMATS:
        raise ExportError(f"push format must be one of {', '.join(PUSH_FORMATS)}, not {format!r}")
    build = open_build(out_dir)
    if (why := _no_text(build, format)) is not None:
        raise ExportError(why)
    _fresh_staging(folder, ours=os.path.join(build.path, "_hub"))
    common = dict(time_format=time_format, media="link", bucket_media=True)
    notes, ignore, dataset_info = [], [], []
    rows_by_split = Counter(build.row_splits())
    held_out = holds_videos_out(build, rows_by_split)
    carried = {format: carried_splits(rows_by_split, format, splits, held_out)}
    warnings, layout_rows = [], {}
    if format == "parquet":
        # a sample build as its configs by split (frames typed as images), or a `vdata haystack` benchmark's
        # items and videos as the `haystack` config (its lmms-eval folder and zip shards are written by the
        # haystack run itself)
        res = export(out_dir, folder, "parquet", splits=splits, relative_sources=True, **common)
        configs, dataset_info = res.configs, res.dataset_info
        notes.append(res.summary())
        if build.level != "haystack_items":
            side_notes, side_splits = _training_side_files(out_dir, folder, repo_id, common, rows_by_split, splits,
                                                           held_out)
            notes += side_notes
            warnings += [n for n in side_notes if n.startswith("lmms-eval task not written")]
            carried.update(side_splits)
        else:   # its lmms-eval task, loading this repo (its table the default config)
            from .haystack_task import stage_haystack_task

            task_configs, task_notes = stage_haystack_task(build.path, folder, repo_id,
                                                           (build.manifest or {}).get("name") or os.path.basename(out_dir))
            configs = [*task_configs, *configs]
            notes += task_notes
    else:
        chosen = carried[format]
        split = split_label(rows_by_split, format, chosen)
        try:
            if format == "lmms-eval":
                res = export(out_dir, folder, "lmms-eval", hub_repo=repo_id, splits=chosen, **common)
            else:
                res = export(out_dir, folder, format, splits=chosen, **common)
        except NothingToExport as e:
            if splits or not chosen:
                raise
            raise NothingToExport(f"{e}; a {format} push takes the {chosen[0]} split where the build holds videos "
                                  f"out{_EMPTY_TEST if format == 'lmms-eval' else ''}: `--split` names the splits to push"
                                  ) from None
        layout_rows = dict(res.rows)
        if format == "llava":
            os.remove(os.path.join(folder, f"{_stem(res)}.yaml"))   # its paths are local to this machine
            configs = [{"config_name": llava_config(f), "data_files": [{"split": split, "path": f}]} for f in res.rows]
        elif format == "sharegpt":
            configs = [{"config_name": _subset_of_file(f), "data_files": [{"split": split, "path": f}]} for f in res.rows]
        else:
            configs = [{"config_name": k, "data_files": [{"split": split, "path": f"data/{k}.parquet"}]}
                       for k in res.rows]
            zip_videos(folder)
            ignore.append("videos/**")
        notes.append(res.summary())
    for c in configs[:1] if not any(c.get("default") for c in configs) else []:
        c["default"] = True
    if os.path.isfile(os.path.join(folder, EXPORT_LEDGER)):   # the exports' bookkeeping, not the dataset's
        os.remove(os.path.join(folder, EXPORT_LEDGER))
    ignore.append(STAGING_MARK)
    n = sum(1 for dp, _, fn in os.walk(folder, followlinks=True) for f in fn if f != STAGING_MARK)
    return Staged(folder, configs, ignore, n, notes, dataset_info, split_note(rows_by_split, carried), carried, warnings,
                  layout_rows)


_EMPTY_TEST = (" (its output.splits held a share out, but no video fell in test: the benchmark would be made of "
               "training videos, labelled test; rebuild with more videos or a larger output.splits.test, or push "
               "`--split train` to publish them as the benchmark knowingly)")


STAGING_MARK = ".vdata-staging"


def _fresh_staging(folder: str, ours: str) -> None:
    """Stage into an emptied folder: what an earlier push staged there and this one does not write (a
    subset the build no longer has, a side file, a split) would otherwise go up again. The Hub skips files
    it already holds byte for byte, so an unchanged re-push or an interrupted one still uploads only what
    is missing. A folder vdata did not stage into (no STAGING_MARK, not under the build's `_hub/`) is
    never emptied: a mistyped `--staging ~` must not delete a home folder."""
    import shutil

    if os.path.isdir(folder) and os.listdir(folder):
        mine = os.path.isfile(os.path.join(folder, STAGING_MARK)) or \
            os.path.realpath(folder).startswith(os.path.realpath(ours) + os.sep)
        if not mine:
            raise HubError(f"staging folder {folder} is not empty and was not staged by vdata push: name an empty "
                           "or new folder")
        shutil.rmtree(folder)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, STAGING_MARK), "w", encoding="utf-8") as fh:
        fh.write("a vdata push staging folder: emptied and restaged by each push\n")


def _no_text(build: BuildDir, format: str) -> str | None:
    """Why a layout of instruction records (llava, sharegpt, lmms-eval) has nothing to carry from a build
    whose rows hold no text (a curation build: videos or clips, no caption, no sample), or None."""
    if format == "parquet" or build.level not in ("clips", "videos") or build.items():
        return None
    rows = len(build.row_splits())
    return (f"nothing to push as {format} from {build.path}: its {rows} {build.level} rows carry no instruction "
            f"text (no caption, no generated sample), which {format} records are made of; the default "
            "`--format parquet` pushes the rows as they are")


def _training_side_files(out_dir: str, folder: str, repo_id: str | None, common: dict, rows_by_split: Counter,
                         asked=None, held_out: bool | None = None) -> tuple[list[str], dict]:
    """The LLaMA-Factory files and the lmms-eval task folder beside the Parquet layout, where the build has
    what they carry: instruction text for LLaMA-Factory (samples, or captioned clips), questions for
    lmms-eval, each of its own split (`carried_splits`). A curation build (clips or videos with no text)
    is pushed as its Parquet alone. Returns the notes and {layout: the splits it holds} of those written."""
    notes, carried = [], {}
    training = carried_splits(rows_by_split, "sharegpt", asked, held_out)
    if training is None or set(training) & set(rows_by_split):
        try:
            export(out_dir, folder, "sharegpt", splits=training, **common)
            carried["sharegpt"] = training
        except NothingToExport:
            notes.append("LLaMA-Factory files: not written (the build's rows carry no instruction text: no caption "
                         "and no generated sample); the Parquet configs are the dataset")
            return notes, carried
    else:
        notes.append(f"LLaMA-Factory files: not written (the build has no {', '.join(training)} rows)")
    benchmark = carried_splits(rows_by_split, "lmms-eval", asked, held_out)
    if benchmark and not set(benchmark) & set(rows_by_split):   # a held-out share that came out empty (h26 F6)
        notes.append(f"lmms-eval task not written: the build has no rows of split {', '.join(benchmark)}, which the "
                     f"benchmark is made of{_EMPTY_TEST}")
        return notes, carried
    try:   # captions only: nothing to evaluate, so no lmms-eval task folder
        lm = export(out_dir, folder, "lmms-eval", hub_repo=repo_id, docs_dir="lmms_eval", hub_videos="files",
                    splits=benchmark, **common)
        notes.append(lm.summary())
        carried["lmms-eval"] = benchmark
    except NothingToExport as e:
        notes.append(f"lmms-eval: {e}")
    return notes, carried


def _stem(res) -> str:
    return os.path.basename(res.files[-1])[:-len(".yaml")]


def _subset_of_file(fname: str) -> str:
    base = re.sub(r"\.jsonl?$", "", fname)
    for s in sorted(SUBSETS, key=len, reverse=True):
        if base.endswith("_" + s):
            return s
    return base


# --- push ------------------------------------------------------------------------------------------

@dataclass
class PushResult:
    repo_id: str
    url: str
    commit: str
    files: int                                      # the files this push writes into the repo
    staging: str
    configs: list
    uploaded: int = 0                               # of those, the ones the Hub did not hold already
    deleted: list = field(default_factory=list)     # files an earlier push wrote and this one does not


def resolve_token(token: str | None = None) -> str:
    from huggingface_hub import get_token

    tok = token or get_token()
    if not tok:
        raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    return tok


def push(out_dir: str, repo_id: str, *, private: bool = False, format: str = "parquet", endpoint: str | None = None,
         token: str | None = None, staging_dir: str | None = None, commit_message: str | None = None,
         time_format: str = "seconds", splits=None, log=None, allow_foreign_files: bool = False,
         source_meta_keys=None) -> PushResult:
    """Stage the build in the Hub layout of `format`, write the card, create the repo, upload.

    splits: only the rows of these splits (`vdata export --split`); None: `train` in the training files,
    `test` in the lmms-eval tasks, every split (kept apart) in the Parquet configs (`carried_splits`).
    allow_foreign_files: push into a repo holding files vdata did not write (`hub/published.py`; none of
    them is deleted). source_meta_keys: the keys of the rows' `source_meta` published (None: all). Every
    staged file has its credential-shaped strings masked (`hub/scrub.py`). A failure of the Hub or the
    network is an UploadFailed (re-running resumes)."""
    import dataclasses

    from huggingface_hub import HfApi, constants

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*", repo_id or ""):
        raise HubError(f"--repo must look like user/name, not {repo_id!r}")
    if constants.is_offline_mode():
        raise HubError("HF_HUB_OFFLINE is set: unset it to push")
    tok = resolve_token(token)
    build = open_build(out_dir)
    folder = staging_dir or os.path.join(build.path, "_hub", format)
    staged = stage(out_dir, folder, format=format, repo_id=repo_id, time_format=time_format, splits=splits)
    scrubbed = scrub_folder(folder, [tok, *_known_secrets()], source_meta_keys)
    shown = staged.carried.get(format) if format != "parquet" else None   # the card counts what the repo holds
    card = dataset_card(build, repo_id=repo_id, format=format, configs=staged.configs, secrets=[tok],
                        dataset_info=staged.dataset_info, layout_rows=staged.rows, time_format=time_format,
                        facts=gather_facts(dataclasses.replace(build, data_files=[
                            f for f in build.data_files if split_of_file(f) in shown])) if shown else None)
    with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as fh:
        fh.write(card)
    ours = rf.upload_paths(folder, staged.ignore, STAGING_MARK)
    rf.write_record(folder, ours)
    message = commit_message or f"vdata push: {build.name} ({format})"
    api = HfApi(endpoint=endpoint, token=tok)
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        plan = rf.plan_repo(api, repo_id, folder, ours, allow_foreign_files)   # refuses before any change
        is_private = rf.visibility(api, repo_id, private)
        for line in ([staged.split_note] if staged.split_note else []) + staged.warnings + scrubbed.lines() + \
                rf.plan_lines(repo_id, plan):
            log and log(line)
        log and log(f"staged {len(ours)} file(s) in {folder}; uploading to {repo_id} "
                    f"({'private' if is_private else 'public'})")
        info = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=folder, commit_message=message,
                                 ignore_patterns=[*staged.ignore, rf.RECORD], delete_patterns=rf.delete_patterns(plan.delete))
        info = rf.commit_record(api, repo_id, folder, plan, message) or info
        after = rf.remote_files(api, repo_id)
    except (HubError, ExportError):
        raise
    except Exception as e:   # HTTP errors from the Hub, a dropped connection: never echo headers
        raise rf.hub_failure(e, repo_id) from e
    return PushResult(repo_id, str(url), info.oid, len(ours), folder, staged.configs, rf.changed(plan.before, after, ours),
                      [p for p in plan.delete if p not in after])
