"""Readers for the annotation files of the field's labelled temporal datasets, as their releases ship them.

TimeSuite, VTG-IT and LITA build their grounded instruction data from these files; here each one is a
direct input (`input: [{manifest: train.json, format: activitynet_captions, videos: clips/}]`). A reader
turns the file into one `VideoRecord` per video: its id, and the `source_meta` the `annotations` stage
reads (`segments`, `chapters`, as `{start_s, end_s, text}` / `{start_s, title}` items) next to the
dataset's own fields. Layouts, each confirmed from the dataset's own documentation or code: in
`captions.py` (dense captions, chapters, subtitles), `grounding.py` (queries and their moments) and
`actions.py` (labelled instances, steps, clips); `base.py` holds what they share and finds the videos.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Callable

from vdata.media import storage as S

from .base import (AnnotationFile, FormatError, RecordProblem, VideoRecord, find_video, json_lines, merge_fallback_meta,
                   text_lines, video_files)

# format -> (module, reader). The reader modules load when a reader is looked up: config validation and
# every build import this package for the format names alone, and the readers' ~1,000 lines would cost
# every `vdata` command at its start.
_READERS: dict[str, tuple[str, str]] = {
    "activitynet": ("actions", "read_activitynet"),
    "activitynet_captions": ("captions", "read_activitynet_captions"),
    "charades_sta": ("grounding", "read_charades_sta"),
    "coin": ("actions", "read_coin"),
    "didemo": ("grounding", "read_didemo"),
    "ego4d_goalstep": ("grounding", "read_ego4d_goalstep"),
    "ego4d_narrations": ("captions", "read_ego4d_narrations"),
    "ego4d_nlq": ("grounding", "read_ego4d_nlq"),
    "howto100m": ("captions", "read_howto100m"),
    "kinetics": ("actions", "read_kinetics"),
    "msrvtt": ("web_clips", "read_msrvtt"),
    "panda70m": ("web_clips", "read_panda70m"),
    "qvhighlights": ("grounding", "read_qvhighlights"),
    "vatex": ("web_clips", "read_vatex"),
    "vidchapters": ("captions", "read_vidchapters"),
    "video2dataset": ("web_clips", "read_video2dataset"),
    "youcook2": ("captions", "read_youcook2"),
}


class _Readers(Mapping):
    """`ANNOTATION_FORMATS[fmt]`: the reader of `fmt`, imported on lookup; the names cost nothing."""

    def __getitem__(self, fmt: str) -> Callable[[str], AnnotationFile]:
        module, reader = _READERS[fmt]
        return getattr(importlib.import_module(f"{__name__}.{module}"), reader)

    def __iter__(self):
        return iter(_READERS)

    def __len__(self) -> int:
        return len(_READERS)


ANNOTATION_FORMATS: Mapping[str, Callable[[str], AnnotationFile]] = _Readers()


def __getattr__(name: str):
    """`from vdata.schemas.annotation_formats import read_msrvtt`: a reader by its name, imported now."""
    for fmt, (_, reader) in _READERS.items():
        if reader == name:
            return ANNOTATION_FORMATS[fmt]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# formats whose manifest is a folder (a downloader's output), read in place, not a file's text
FOLDER_FORMATS = frozenset({"video2dataset"})

# the annotation kinds each format's records carry (what a recipe's `annotations` stage can require of it)
FORMAT_KINDS: dict[str, tuple[str, ...]] = {
    "activitynet": ("segments", "labels"), "activitynet_captions": ("segments",), "charades_sta": ("segments",),
    "coin": ("segments", "labels"), "didemo": ("segments",), "ego4d_goalstep": ("segments", "labels"),
    "ego4d_narrations": ("segments",),
    "ego4d_nlq": ("segments",), "howto100m": ("subtitles",), "kinetics": ("labels",),
    "msrvtt": (), "panda70m": ("segments",), "qvhighlights": ("segments",), "vatex": (),   # captions: source_meta
    "vidchapters": ("chapters",), "video2dataset": ("title", "description", "subtitles"), "youcook2": ("segments",),
}


def read_annotation_file(fmt: str, path: str) -> AnnotationFile:
    """The videos and problems of one annotation file (or, for FOLDER_FORMATS, folder), local or a URL;
    FormatError when it is not `fmt` at all."""
    if fmt in FOLDER_FORMATS:
        if not S.isdir(path):
            raise FormatError(f"{fmt} reads the folder its downloader wrote, not a file")
        return ANNOTATION_FORMATS[fmt](path)
    if S.is_remote(path):
        text = S.read_bytes(path).decode("utf-8-sig")
    else:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    return ANNOTATION_FORMATS[fmt](text)


__all__ = ["ANNOTATION_FORMATS", "FOLDER_FORMATS", "FORMAT_KINDS", "AnnotationFile", "FormatError", "RecordProblem", "VideoRecord",
           "find_video", "json_lines", "merge_fallback_meta", "read_annotation_file", "text_lines", "video_files",
           *(reader for _, reader in _READERS.values())]
