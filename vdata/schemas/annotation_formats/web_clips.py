"""Web-video caption datasets: captioned clips of YouTube (and stock) videos, as their releases list them and
as their downloader leaves them. Layouts, each confirmed from the dataset's own documentation or code:

- `panda70m`: Panda-70M's CSV files (snap-research/Panda-70M dataset_dataloading/README.md; timecodes as in
  splitting/README.md), one row per source video: `videoID, url, timestamp, caption, matching_score`, the last
  three Python-literal lists, one entry per clip: `[['0:00:00.000', '0:00:05.839'], ...]`, `['A man ...', ...]`,
  `[0.45, ...]`. Each clip becomes a segment of the full video (its `matching_score` on the item). Videos:
  `<videoID>.mp4` (yt-dlp's own name for a download of the url).
- `video2dataset`: the output folder of video2dataset (iejMac/video2dataset, with which Panda-70M, WebVid
  and InternVid are downloaded) in its default `files` layout: `<shard>/<key>.mp4`, `<key>.txt` (the
  caption) and `<key>.json` (FilesSampleWriter in video2dataset/data_writer.py): the input row's columns
  (`url`, `caption`, the clip column as `clips`, any `save_additional_columns`) with `key`, `status`,
  `error_message` and `yt_meta_dict: {info: yt-dlp's info (title, description, ...), subtitles: [{start, end,
  lines}]}` (workers/download_worker.py, data_reader.py get_yt_meta). Panda-70M's fork cuts each source
  video into its clips (subsamplers/clipping_subsampler.py): a clip's `clips` is its span in the source
  (`"[('00:00:05.005', '00:00:09.509')]"`), its `caption` its own, and `clip_subtitles` the subtitle lines
  that overlap it, on the source's clock. With `output_format: webdataset` the same three files of a sample
  are members of `<shard>.tar` (WebDatasetSampleWriter); ingest extracts each video into the build's
  `_media/` folder, once. The manifest is the output folder itself (or its bucket prefix, as video2dataset
  writes to `s3://` too); `videos` defaults to it.
- `msrvtt`: MSR-VTT's `train_val_videodatainfo.json` / `test_videodatainfo.json` (also CLIP4Clip's
  `MSRVTT_data.json`): `{videos: [{video_id, category, url, start time, end time, split, id}], sentences:
  [{video_id, caption, sen_id}]}`, about 20 sentences per 10-30 s clip, each describing all of it. Videos:
  `<video_id>.mp4` (`TrainValVideo/`, `TestVideo/`).
- `vatex`: VATEX's `vatex_training_v1.0.json` / `vatex_validation_v1.0.json`: `[{videoID, enCap: [10 English],
  chCap: [10 Chinese]}]`, the id `<youtube id>_<start:06d>_<end:06d>` naming the 10-s clip. Videos:
  `<videoID>.mp4`.
For both, a clip's first sentence is its `caption` in `source_meta` (what `generate`'s caption task and the
claim filters read), all of them `captions` (VATEX's Chinese ones `captions_zh`).
"""
from __future__ import annotations

import ast
import json
import os
import tarfile
from typing import Any

from vdata.media import storage as S
from vdata.media.archives import shard_copy

from .base import (AnnotationFile, FormatError, RecordProblem, VideoRecord, as_number, clock_seconds, csv_records,
                   pair_lists, parse_json, without_repeated_ids)

PANDA_COLUMNS = ("videoID", "timestamp", "caption")


def _literal_list(cell: Any) -> list | None:
    """A list cell as Panda-70M writes it (Python repr: single quotes, tuples), or a list; None if not one."""
    if isinstance(cell, (list, tuple)):
        return list(cell)
    if not isinstance(cell, str) or not cell.strip():
        return None
    try:
        value = ast.literal_eval(cell.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return list(value) if isinstance(value, (list, tuple)) else None


def _clock_span(span: Any) -> list:
    if isinstance(span, (list, tuple)):
        return [clock_seconds(t) for t in list(span)[:2]] + [None] * max(0, 2 - len(span))
    return [None, None]


def read_panda70m(text: str) -> AnnotationFile:
    rows = csv_records(text, PANDA_COLUMNS, "Panda-70M")
    out = AnnotationFile()
    by_id: dict[str, dict] = {}
    for row in rows:
        number = rows.line_num
        video_id = (row.get("videoID") or "").strip()
        spans, captions = _literal_list(row.get("timestamp")), _literal_list(row.get("caption"))
        scores = _literal_list(row.get("matching_score")) or []
        if not video_id or spans is None or captions is None:
            out.problems.append(RecordProblem(f"line {number}", "annotation_record_malformed", f"line {number} needs a "
                                              f"videoID and timestamp and caption lists", dict(row)))
            continue
        meta = by_id.setdefault(video_id, {"segments": [], "youtube_id": video_id,
                                           **({"video_url": row["url"].strip()} if (row.get("url") or "").strip() else {})})
        for i, (span, caption) in enumerate(pair_lists(spans, captions)):
            start, end = _clock_span(span)
            score = as_number(scores[i]) if i < len(scores) else None
            meta["segments"].append({"start_s": start, "end_s": end, "text": caption,
                                     **({"matching_score": score} if isinstance(score, float) else {})})
    out.videos += [VideoRecord(video_id, meta) for video_id, meta in by_id.items()]
    return out


# video2dataset's own bookkeeping and what is read into its own kinds: not copied into source_meta as is
_V2D_INTERNAL = {"key", "status", "error_message", "yt_meta_dict", "clip_subtitles", "clips", "caption", "url",
                 "video_metadata", "cuts"}


def _cues(lines: Any, offset: float, length: float | None) -> list:
    """video2dataset's subtitle lines `{start, end, lines}` (WebVTT clock times) as cues on a clip's clock
    (`offset`: where the clip starts in its source; `length`: its length, None for a whole video)."""
    cues = []
    for line in lines if isinstance(lines, list) else []:
        if not isinstance(line, dict):
            cues.append(line)
            continue
        text = line.get("lines", line.get("line"))
        text = " ".join(t.strip() for t in text if isinstance(t, str)) if isinstance(text, list) else text
        start, end = clock_seconds(line.get("start")), clock_seconds(line.get("end"))
        start, end = (t - offset if isinstance(t, (int, float)) and not isinstance(t, bool) else t
                      for t in (start, end))
        if isinstance(start, (int, float)) and isinstance(end, (int, float)) and start < end:
            # the source's line list (no clip_subtitles) holds the lines of the whole video: one that does not
            # overlap the clip is another clip's, not a bad cue
            if end <= 0 or (length is not None and start >= length):
                continue
            # a line that began before the clip did is on screen from its first frame, one that ends after it
            # until its last
            start, end = max(0.0, start), end if length is None else min(end, length)
        cues.append({"start_s": start, "end_s": end, "text": text})
    return cues


def _sample_meta(sample: dict, caption: str | None) -> dict:
    yt = sample.get("yt_meta_dict") if isinstance(sample.get("yt_meta_dict"), dict) else {}
    info = yt.get("info") if isinstance(yt.get("info"), dict) else {}
    clips = _literal_list(sample.get("clips"))
    span = _clock_span(clips[0] if clips and isinstance(clips[0], (list, tuple)) else clips) if clips else None
    offset = span[0] if span and isinstance(span[0], float) else 0.0
    length = span[1] - offset if span and isinstance(span[1], float) and span[1] > offset else None
    subtitles = sample.get("clip_subtitles") if span else None
    if subtitles is None:
        subtitles = yt.get("subtitles")
    text = caption if caption is not None and caption.strip() else sample.get("caption")
    meta = {
        **({"caption": text.strip()} if isinstance(text, str) and text.strip() else {}),
        **{k: info[k].strip() for k in ("title", "description") if isinstance(info.get(k), str) and info[k].strip()},
        **({"subtitles": _cues(subtitles, offset, length)} if isinstance(subtitles, list) and subtitles else {}),
        **({"video_url": sample["url"]} if isinstance(sample.get("url"), str) else {}),
        **({"source_span_s": span} if span else {}),
        **{k: v for k, v in sample.items() if k not in _V2D_INTERNAL and isinstance(v, (str, int, float, bool))},
    }
    if "matching_score" in meta:
        meta["matching_score"] = as_number(meta["matching_score"])
    return meta


def _is_sample(sample: object) -> bool:
    return isinstance(sample, dict) and "key" in sample and "status" in sample


def _add_sample(out: AnnotationFile, sample: dict, caption: str | None, **where) -> None:
    """One of video2dataset's samples as a record, or, where it was not downloaded, a problem with its error."""
    key = str(sample["key"])
    if sample["status"] != "success":
        out.problems.append(RecordProblem(f"sample {key}", "source_not_downloaded",
                                          f"video2dataset did not download sample {key} ({sample['status']}): "
                                          f"{sample.get('error_message') or 'no message'}",
                                          {k: sample.get(k) for k in ("key", "url", "status", "error_message")}))
        return
    out.videos.append(VideoRecord(key, _sample_meta(sample, caption), **where))


def _files_sample(out: AnnotationFile, text: bytes | OSError, rel: str, name: str,
                  caption: bytes | OSError | None) -> bool:
    """`<key>.json` (and `<key>.txt`) of the files layout; False when it is not a video2dataset sample."""
    try:
        if isinstance(text, OSError):
            raise text
        sample = json.loads(text.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        out.problems.append(RecordProblem(f"{rel}/{name}".lstrip("/"), "annotation_record_malformed",
                                          f"{name} cannot be read: {e}", None))
        return False
    if not _is_sample(sample):
        return False
    if isinstance(caption, bytes) and name.removesuffix(".json") != str(sample["key"]):
        caption = None   # the caption beside is another key's
    _add_sample(out, sample, caption.decode("utf-8", "replace") if isinstance(caption, bytes) else None,
                folders=(rel,))
    return True


TAR_VIDEO_EXTENSIONS = ("mp4", "webm", "mkv", "mov", "avi")


def _tar_samples(out: AnnotationFile, path: str, rel: str) -> int:
    """The samples of one webdataset shard (`<shard>.tar`: `<key>.mp4`, `<key>.txt`, `<key>.json` members, as
    WebDatasetSampleWriter writes them); each video stays in the archive (`member`) for ingest to extract."""
    where = f"{rel}/{os.path.basename(path)}".lstrip("/")
    try:
        with tarfile.open(shard_copy(path)) as tar:
            groups: dict[str, dict[str, tarfile.TarInfo]] = {}
            for member in tar:
                if member.isfile():
                    # webdataset's key: the name up to the first dot of its last part
                    folder, _, base = member.name.rpartition("/")
                    key, _, ext = base.partition(".")
                    groups.setdefault(f"{folder}/{key}", {})[ext.lower()] = member
            count = 0
            for members in groups.values():
                try:
                    sample = json.load(tar.extractfile(members["json"])) if "json" in members else None
                except (UnicodeDecodeError, json.JSONDecodeError) as e:
                    out.problems.append(RecordProblem(f"{where}:{members['json'].name}", "annotation_record_malformed",
                                                      f"{members['json'].name} in {where} cannot be read: {e}", None))
                    continue
                if not _is_sample(sample):
                    continue
                count += 1
                caption = tar.extractfile(members["txt"]).read().decode("utf-8", "replace") if "txt" in members else None
                video = next((members[e] for e in TAR_VIDEO_EXTENSIONS if e in members), None)
                _add_sample(out, sample, caption, member=(path, video.name) if video else None,
                            exact=(f"{sample['key']}.mp4",), folders=(rel,))
            return count
    except (OSError, tarfile.TarError) as e:
        out.problems.append(RecordProblem(where, "annotation_record_malformed", f"shard {where} cannot be read: {e}", None))
        return 0


def _listing(folder: str) -> list[tuple[str, str]]:
    """(folder relative to `folder`, file name) of each file, top folder first: hidden entries and `_` folders
    (`_tmp`: a download under way) left out. A bucket prefix is listed once, recursively."""
    if S.is_remote(folder):
        # find_relative's (folder, name) order is os.walk's below: a folder's files, then its sub-folders
        return [(rel, name) for rel, name in S.find_relative(folder) if not name.startswith(".")
                and not any(part.startswith((".", "_")) for part in rel.split("/") if part)]
    found = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        rel = os.path.relpath(here, folder)
        rel = "" if rel == "." else rel.replace(os.sep, "/")
        found += [(rel, name) for name in sorted(files) if not name.startswith(".")]
    return found


def _read_files(folder: str, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], bytes | OSError]:
    """The bytes of each (rel, name) of `wanted`, or the error reading it; a bucket's in parallel (a request each)."""
    def read(entry: tuple[str, str]) -> bytes | OSError:
        try:
            return S.read_bytes(S.join(folder, *[part for part in entry if part]))
        except OSError as e:
            return e

    if S.is_remote(folder):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(32) as pool:
            return dict(zip(wanted, pool.map(read, wanted)))
    return {entry: read(entry) for entry in wanted}


def read_video2dataset(folder: str) -> AnnotationFile:
    """The samples under the folder (or bucket prefix) video2dataset wrote, in either output format. Sample
    files are read a batch at a time (yt-dlp's info makes a `.json` tens of kB: 10^5 of them held at once
    would be gigabytes)."""
    out = AnnotationFile()
    seen = 0
    entries = _listing(folder)
    present = set(entries)
    pending: list[tuple[str, str]] = []   # `.json` samples, in listing order, read together

    def read_pending() -> int:
        captions = [(rel, name[:-5] + ".txt") for rel, name in pending if (rel, name[:-5] + ".txt") in present]
        texts = _read_files(folder, pending + captions)
        count = sum(_files_sample(out, texts[(rel, name)], rel, name, texts.get((rel, name[:-5] + ".txt")))
                    for rel, name in pending)
        pending.clear()
        return count

    for rel, name in entries:
        if name.endswith(".tar"):
            seen += read_pending() + _tar_samples(out, S.join(folder, rel, name) if rel else S.join(folder, name), rel)
        elif name.endswith(".json") and not name.endswith("_stats.json"):
            pending.append((rel, name))
            if len(pending) >= 256:
                seen += read_pending()
    seen += read_pending()
    if not seen:
        raise FormatError("no video2dataset sample under it: the folder video2dataset wrote holds <shard>/<key>.json "
                          "files (output_format: files) or <shard>.tar shards (webdataset), each sample with key and "
                          "status" + (f" ({out.problems[0].message})" if out.problems else ""))
    return out


def _captioned(video_id: str, sentences: list, extra: dict) -> VideoRecord:
    texts = [t.strip() for t in sentences if isinstance(t, str) and t.strip()]
    return VideoRecord(video_id, {**({"caption": texts[0]} if texts else {}), "captions": texts, **extra})


def read_msrvtt(text: str) -> AnnotationFile:
    data = parse_json(text)
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list) or not isinstance(data.get("sentences"), list):
        raise FormatError("MSR-VTT files hold {\"videos\": [{video_id, split, ...}], \"sentences\": [{video_id, caption}]}")
    out = AnnotationFile()
    sentences: dict[str, list] = {}
    def order(sentence: dict) -> tuple:   # sen_id is a number (MSR-VTT numbers all sentences of the release)
        number = as_number(sentence.get("sen_id"))
        return (0, number, "") if isinstance(number, float) else (1, 0.0, str(sentence.get("sen_id")))

    for sentence in sorted((s for s in data["sentences"] if isinstance(s, dict)), key=order):
        sentences.setdefault(str(sentence.get("video_id")), []).append(sentence.get("caption"))
    for number, video in enumerate(data["videos"]):
        if not isinstance(video, dict) or not isinstance(video.get("video_id"), str) or not video["video_id"]:
            out.problems.append(RecordProblem(f"video {number}", "annotation_record_malformed",
                                              f"video {number} has no video_id", video))
            continue
        extra = {k2: video[k] for k, k2 in (("split", "subset"), ("category", "category"), ("url", "video_url"),
                                             ("start time", "source_start_s"), ("end time", "source_end_s"))
                 if video.get(k) is not None}
        out.videos.append(_captioned(video["video_id"], sentences.get(video["video_id"], []), extra))
    listed = {v.video_id for v in out.videos}
    for video_id, said in sorted(sentences.items()):   # sentences of a video the file does not list: said, not lost
        if video_id not in listed:
            out.problems.append(RecordProblem(f"sentences of {video_id!r}", "annotation_record_orphan",
                                              f"{len(said)} sentence(s) for video {video_id!r}, which the file's "
                                              "`videos` list does not name", None))
    return without_repeated_ids(out, "video_id")


def read_vatex(text: str) -> AnnotationFile:
    data = parse_json(text)
    if not isinstance(data, list):
        raise FormatError("VATEX files hold [{videoID, enCap: [...], chCap: [...]}]")
    out = AnnotationFile()
    for number, record in enumerate(data):
        if not isinstance(record, dict) or not isinstance(record.get("videoID"), str) or not record["videoID"]:
            out.problems.append(RecordProblem(f"record {number}", "annotation_record_malformed",
                                              f"record {number} has no videoID", record))
            continue
        chinese = [t for t in record.get("chCap") or [] if isinstance(t, str) and t.strip()]
        out.videos.append(_captioned(record["videoID"], record.get("enCap") or [],
                                     {"captions_zh": chinese} if chinese else {}))
    return without_repeated_ids(out, "videoID")
