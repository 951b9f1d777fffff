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

import os
from typing import Callable

from vdata.media import storage as S

from .actions import read_activitynet, read_coin, read_kinetics
from .base import AnnotationFile, FormatError, RecordProblem, VideoRecord, find_video, json_lines, video_files
from .captions import (read_activitynet_captions, read_ego4d_narrations, read_howto100m, read_vidchapters,
                       read_youcook2)
from .grounding import read_charades_sta, read_didemo, read_ego4d_goalstep, read_ego4d_nlq, read_qvhighlights
from .web_clips import read_msrvtt, read_panda70m, read_vatex, read_video2dataset

ANNOTATION_FORMATS: dict[str, Callable[[str], AnnotationFile]] = {
    "activitynet": read_activitynet,
    "activitynet_captions": read_activitynet_captions,
    "charades_sta": read_charades_sta,
    "coin": read_coin,
    "didemo": read_didemo,
    "ego4d_goalstep": read_ego4d_goalstep,
    "ego4d_narrations": read_ego4d_narrations,
    "ego4d_nlq": read_ego4d_nlq,
    "howto100m": read_howto100m,
    "kinetics": read_kinetics,
    "msrvtt": read_msrvtt,
    "panda70m": read_panda70m,
    "qvhighlights": read_qvhighlights,
    "vatex": read_vatex,
    "vidchapters": read_vidchapters,
    "video2dataset": read_video2dataset,
    "youcook2": read_youcook2,
}
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
           "find_video", "json_lines", "read_annotation_file", "video_files",
           *(f.__name__ for f in ANNOTATION_FORMATS.values())]
