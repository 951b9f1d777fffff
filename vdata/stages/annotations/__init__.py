"""annotations: the typed annotations a video arrives with, validated into the `annotations` column.

Kinds (R.ANNOTATION_KINDS): title, description, labels, chapters, segments (dense captions),
subtitles (SRT / WebVTT) and a given transcript. Each comes from the video's `source_meta` under the
key(s) `sources` names (default: the kind's own name), else from sidecar files next to the video
(`sidecars`), else from inside the video file (`embedded`: chapters, subtitle tracks, title,
description; see sources.py). `chapters` with no source of their own are read from the description's
"0:00 Intro" lines (YouTube's rule: the first must be 0:00). Then every item is checked against the
video's duration (vdata.schemas.annotations): chapters ordered and inside the video, segments and
subtitles inside it (a small overshoot clamped), subtitles not overlapping, labels in the vocabulary.

A bad item is dropped and becomes its own reject row with its reason (`chapter_past_end`,
`subtitle_overlap`, `subtitle_garbled`, `label_not_in_vocabulary`, `segment_out_of_range`, ...; the
detail has the item as given) while the video goes on with the good items: the runner splits the
video's mass over the kept row and these rejects. `on_bad_item: reject_video` rejects the whole video
instead. A video lacking a `require`d kind (after bad items are dropped) is rejected `missing_annotation`.
`annotation_issues` counts dropped items, `annotation_repairs` the items kept after clamping/trimming.
"""
from __future__ import annotations

import json
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from vdata.schemas import records as R
from vdata.schemas.config import config_file
from vdata.schemas.annotations import present_kinds, read_label_file, validate_annotations

from ..base import Resources, Stage, StageConfig
from .sources import SourceReader

KINDS = R.ANNOTATION_KINDS
TIMED_KINDS = ("chapters", "segments", "subtitles")


class ParallelColumns(BaseModel):
    """A timed kind stored as parallel list columns (HF datasets often do: starts, ends, texts)."""

    model_config = ConfigDict(extra="forbid")
    start: str
    end: str | None = None      # chapters need none
    text: str


class AnnotationsConfig(StageConfig):
    # kind -> the source_meta key (or keys, first present wins), or parallel columns {start, end, text};
    # unnamed kinds use their own name
    sources: dict[str, str | list[str] | ParallelColumns] = Field(default_factory=dict)
    sidecars: bool = True                       # read <stem>.srt / .vtt / .<lang>.srt / .chapters.txt / .json ...
    embedded: bool = True                       # read chapters, subtitle tracks, title, description inside the file
    subtitle_languages: list[str] = Field(default_factory=lambda: ["en"])   # <stem>.<lang>.srt / track preference order
    chapters_from_description: bool = True      # "0:00 Intro" lines of the description when no chapters are given
    label_vocabulary: list[str] | str | None = None   # the allowed labels, or a file (.json list or one per line)
    require: list[str] = Field(default_factory=list)  # kinds a video must have, else it is rejected
    on_bad_item: Literal["drop", "reject_video"] = "drop"
    tolerance_s: float = Field(0.5, ge=0, le=10)      # overshoot clamped (segments, subtitles) / overlap trimmed
    subtitle_overlap: Literal["drop", "trim"] = "drop"   # trim: cut the earlier cue (rolling captions overlap)
    # an annotation file's own `duration` unlike the probed one by more than this share of it (and 1 s) is
    # a truncated download or another cut of the video, where the file's times point elsewhere: the video
    # is rejected `duration_mismatch` (null: never)
    duration_tolerance: float | None = Field(0.05, ge=0, le=1)

    @field_validator("sources")
    @classmethod
    def _known_kinds(cls, value: dict) -> dict:
        for kind, keys in value.items():
            if kind not in KINDS:
                raise ValueError(f"sources.{kind}: unknown annotation kind (allowed: {', '.join(KINDS)})")
            if not keys:
                raise ValueError(f"sources.{kind}: name at least one source_meta key")
            if isinstance(keys, ParallelColumns) and kind not in TIMED_KINDS:
                raise ValueError(f"sources.{kind}: parallel columns are for {', '.join(TIMED_KINDS)} only")
            if isinstance(keys, ParallelColumns) and kind != "chapters" and keys.end is None:
                raise ValueError(f"sources.{kind}.end: {kind} need an end column")
        return value

    @field_validator("require")
    @classmethod
    def _known_required(cls, value: list[str]) -> list[str]:
        unknown = [k for k in value if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown annotation kind(s) {unknown} (allowed: {', '.join(KINDS)})")
        return value

    @field_validator("label_vocabulary")
    @classmethod
    def _vocabulary(cls, value: list[str] | str | None, info: ValidationInfo) -> list[str] | None:
        """A file (beside the config when relative) is read now, so the vocabulary itself is part of the
        config (and of its hash)."""
        if not isinstance(value, str):
            return None if value is None else [" ".join(str(v).split()) for v in value if str(v).strip()]
        path = config_file(value, info)
        if not os.path.isfile(path):
            raise ValueError(f"no such file {value!r}")
        return read_label_file(path)   # `#` lines are comments, as for label_mcq.vocabulary: one file serves both

    def key_map(self) -> dict[str, list[str] | ParallelColumns]:
        """The source_meta keys of each kind: the configured ones, then the kind's own name, where the
        annotation-file formats put theirs (a recipe's `labels: label` still reads a Kinetics file's labels)."""
        given = {k: [v] if isinstance(v, str) else v for k, v in self.sources.items()}
        return {kind: given[kind] if isinstance(given.get(kind), ParallelColumns)
                else list(dict.fromkeys([*given.get(kind, []), kind])) for kind in KINDS}


class AnnotationsStage(Stage):
    name = "annotations"
    version = 13  # 2: YouTube's automatic captions once per line; yt-dlp's download listings are no subtitles;
    #               3: a kind is also read under its own name when the configured key is absent;
    #               4: a clock with a fraction ("0:01:02.5") is a time, not an unreadable item;
    #               5: a video in a bucket has its sidecars read beside its URL;
    #               6: a key that gives none of the kind lets the next key (and place) give it;
    #               7: an item given twice is kept once (a repair); one ending before 0 is out of range
    #               8: a video unlike its annotation file's duration is rejected duration_mismatch;
    #               9: description time lines that make no YouTube chapters are no chapter issues
    #               10: text encodings (mostly-UTF-8, Western code pages, non-UTF-8 SubRip tracks); a sidecar
    #                   with no cue lets the next source speak; .SRT; full tracks before forced ones; a
    #                   cue or chapter that overlaps the video is clamped, not dropped
    #               11: forced sidecars after every other file of the wanted languages; subtitles in another
    #                   language are a repair (subtitle_other_language); `#` lines of a labels file are
    #                   comments; messages name cues by time, without a doubled kind prefix
    #               12: chapter times with a fraction, range lines and one-line lists; prose ending in a clock
    #                   is no chapter; <br> is a line break; a chapter's given end unlike the next start is a
    #                   repair; sidecar names are compared in Unicode NFC (macOS writes NFD)
    #               13: a title / description / transcript that is not text is <kind>_malformed, not its repr;
    #                   a chapter line whose time a preposition leads ("... at 18:00") is prose; text that opens
    #                   with a bracket ("[Music] guitar") is JSON only where it starts like JSON; an item whose
    #                   text is a number is <kind>_malformed
    Config = AnnotationsConfig
    reads = (R.PATH, R.SOURCE_META, R.DURATION_S)
    writes = R.ANNOTATION_COLUMNS
    default_resources = Resources(num_cpus=0.25, batch_size=16)

    def describe(self) -> str:
        settings = self.config.model_dump(exclude={"resources", "label_vocabulary"}, mode="json")
        vocabulary = self.config.label_vocabulary
        settings["label_vocabulary"] = None if vocabulary is None else f"{len(vocabulary)} labels"
        return json.dumps(settings, sort_keys=True)

    def gather(self, row: dict) -> tuple[dict, list]:
        """The raw value of each kind the video has, and the issues met reading them."""
        cfg = self.config
        reader = SourceReader(row[R.PATH], row.get(R.SOURCE_URI), cfg.key_map())
        raw: dict = {}
        meta = R.source_meta(row)
        if meta:
            reader.from_mapping(meta, list(KINDS), raw)
        if cfg.sidecars:
            reader.from_sidecars(list(KINDS), raw, cfg.subtitle_languages)
            if row.get(R.REMOTE_PATH):   # a video in a bucket: its sidecars are beside the URL, not the local copy
                reader.from_remote_sidecars(row[R.REMOTE_PATH], list(KINDS), raw, cfg.subtitle_languages)
        if cfg.embedded:
            reader.from_container(list(KINDS), raw, cfg.subtitle_languages)
        if "chapters" not in raw and cfg.chapters_from_description and isinstance(raw.get("description"), str):
            chapters = reader.chapters_from_description(raw["description"])
            if chapters:
                raw["chapters"] = chapters
        return raw, reader.issues

    def process_row(self, row):
        cfg = self.config
        annotated, probed = R.source_meta(row).get("annotated_duration_s"), row.get(R.DURATION_S)
        if (cfg.duration_tolerance is not None and isinstance(annotated, (int, float)) and probed
                and abs(annotated - probed) > max(1.0, cfg.duration_tolerance * annotated)):
            return self.reject(row, "duration_mismatch", f"the annotation file gives the video {annotated:.1f} s and "
                               f"it lasts {probed:.1f} s: a truncated download or another cut, where the file's "
                               f"times point elsewhere (annotations.duration_tolerance)",
                               annotated_duration_s=annotated, duration_s=probed)
        raw, issues = self.gather(row)
        annotations, found = validate_annotations(raw, row.get(R.DURATION_S), vocabulary=cfg.label_vocabulary,
                                                  tolerance_s=cfg.tolerance_s, subtitle_overlap=cfg.subtitle_overlap)
        issues = issues + found
        dropped = [i for i in issues if i.dropped]
        missing = [k for k in cfg.require if k not in present_kinds(annotations)]
        if missing:
            why = f"; {len(dropped)} bad item(s) were dropped ({', '.join(sorted({i.reason for i in dropped}))})" if dropped else ""
            return self.reject(row, "missing_annotation", f"required annotation(s) {', '.join(missing)} absent{why}",
                               missing=missing, issues=[_detail(i) for i in dropped])
        if dropped and cfg.on_bad_item == "reject_video":
            first = dropped[0]
            return self.reject(row, first.reason, f"{len(dropped)} bad annotation item(s); first: {first.kind}: "
                               f"{first.message}",
                               issues=[_detail(i) for i in dropped])
        for issue in issues:
            if not issue.dropped:   # which repairs, by reason, in the manifest (a row keeps only their number)
                self.counters[f"repaired_{issue.reason}"] += 1
        kept = {**row, R.ANNOTATIONS: annotations, R.ANNOTATION_ISSUES: len(dropped),
                R.ANNOTATION_REPAIRS: len(issues) - len(dropped)}
        return [kept, *(self.reject(row, i.reason, f"{i.kind}: {i.message}", **i.detail()) for i in dropped)]




def _detail(issue) -> dict:
    return {"reason": issue.reason, "message": issue.message, **issue.detail()}
