"""Where one video's annotations come from, and how each value becomes Python data.

Three places, in this order for each kind: the video's `source_meta` (manifest / HF columns, under the
key `sources` names), then sidecar files next to the video. The first place that has a kind gives it;
nothing is merged across places. Within a place, the kind's keys are tried in order and the first that
gives at least one item wins (`sources: {chapters: description}` reads the description's chapter lines,
else the `chapters` list). A value is inline (SRT/VTT text, a JSON list, description lines, a
label string) or the path of a file, relative to the video's folder or the manifest's.

Sidecars, for a video `talk.mp4` (yt-dlp's own names included, since that is how most annotated
videos arrive): `talk.json` (any kinds, same keys as source_meta), `talk.info.json` (yt-dlp: title,
description, chapters), `talk.srt|vtt|ass|ssa`, then `talk.<lang>.srt|vtt|ass|ssa` (preferred languages first,
then the rest in name order; extensions in any case; a file that gives no cue lets the next one, and
the container's track, speak), `talk.chapters.txt` (description-style lines), `talk.description`.
Last, what the video file carries inside (`embedded`: chapters, a text subtitle track, title and
description, as yt-dlp's --embed-chapters --embed-subs --embed-metadata write them).
"""
from __future__ import annotations

import json
import os
import posixpath
import re
import tempfile
import unicodedata
from dataclasses import asdict
from typing import Any

from vdata.media import storage as S
from vdata.media.embedded import read_embedded
from vdata.media.streams import iso_639_1
from vdata.media.chapter_lines import parse_chapter_lines
from vdata.media.subtitles import SUBTITLE_EXTENSIONS, load_subtitles, looks_like_subtitles, parse_subtitles, read_text
from vdata.schemas.annotations import SINGULAR, AnnotationIssue, label_lines

_FILE_EXTENSIONS = (".srt", ".vtt", ".ass", ".ssa", ".json", ".jsonl", ".txt", ".description", ".csv", ".tsv")
_LABEL_SPLIT = re.compile(r"[;,|\n]")


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def sidecar_files(stem: str) -> dict[str, str]:
    """The files beside a video whose name starts with its stem and a dot, by name in Unicode NFC -> path.
    Compared in NFC: macOS (and zips made there) stores names decomposed (NFD), so "Café.en.srt" written there
    is another string than the "Café.mp4" beside it (outside check h20: such a sidecar was ignored)."""
    folder, base = os.path.split(stem)
    prefix = _nfc(base) + "."
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return {}
    return {_nfc(n): os.path.join(folder, n) for n in names
            if _nfc(n).startswith(prefix) and os.path.isfile(os.path.join(folder, n))}


def _problem_issues(kind: str, parsed) -> list[AnnotationIssue]:
    return [AnnotationIssue(kind, p.reason, p.message, p.raw, dropped=p.dropped) for p in parsed.problems]


# how a JSON array or object starts (`[` then a value, `{` then a key or `}`): text that merely opens with a
# bracket ("[Music] guitar", "[Official Video]", "{remastered}") is read in the kind's own text form (h24 F10)
_JSON_START = re.compile(r'\[\s*(?:["\[{\]\d-]|true\b|false\b|null\b)|\{\s*["}]')


def _unparsable(kind: str, message: str, value: Any) -> AnnotationIssue:
    return AnnotationIssue(kind, f"{SINGULAR.get(kind, kind)}_unparsable", message, value)


def _json_list(value: Any) -> Any:
    """A list column as it arrives: a list (HF), or its JSON text (a CSV cell)."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _without_download_listings(data: dict) -> dict:
    """A sidecar JSON without yt-dlp's listings of what it could download: its `subtitles` and
    `automatic_captions` are {language: [{ext, url}, ...]}, not cues. Read as subtitles they were one
    malformed item, and they hid the `.en.vtt` file yt-dlp wrote next to the video."""
    def listing(value: Any) -> bool:
        return isinstance(value, dict) and bool(value) and all(
            isinstance(v, list) and all(isinstance(f, dict) and "url" in f for f in v) for v in value.values())

    return {k: v for k, v in data.items() if not listing(v)}


def _language(tag: str) -> str | None:
    """The ISO 639-1 code a subtitle file's language tag names: `en`, `en-US`, `eng`, `english`; else None."""
    code = iso_639_1(tag)
    if code is None and len(tag) > 3:
        import pycountry

        code = getattr(pycountry.languages.get(name=tag), "alpha_2", None)
    return code


class SourceReader:
    """Finds and decodes the kinds of one video; issues met on the way collect in `issues`."""

    def __init__(self, video_path: str, source_uri: str | None, key_map: dict[str, Any]):
        self.video_path = video_path
        self.key_map = key_map
        self.dirs = [os.path.dirname(os.path.abspath(video_path))]
        # a linked video (ingest links a file whose name is not UTF-8): its sidecars are next to the file itself
        self.target = os.path.realpath(video_path)
        if os.path.dirname(self.target) not in self.dirs:
            self.dirs.append(os.path.dirname(self.target))
        manifest = (source_uri or "").rpartition("#")[0]
        if manifest and os.path.isfile(manifest):
            self.dirs.append(os.path.dirname(manifest))
        self.issues: list[AnnotationIssue] = []

    # --- lookup -----------------------------------------------------------------------------------
    def from_mapping(self, mapping: dict, kinds: list[str], raw: dict) -> None:
        """Kinds not yet in `raw`, from a dict keyed like source_meta."""
        for kind in kinds:
            if kind in raw:
                continue
            keys = self.key_map[kind]
            if not isinstance(keys, list):   # parallel columns: start, end, text
                zipped = self._zip_columns(kind, mapping, keys)
                if zipped is not None:
                    raw[kind] = zipped
                continue
            for key in keys:
                value = mapping.get(key)
                if value is not None and value != "" and value != []:
                    decoded = self.decode(kind, value)
                    # a key whose value gives none of the kind (a description with no chapter lines, where
                    # yt-dlp's info.json has YouTube's automatic chapters under `chapters`) lets the next speak
                    if decoded is not None and decoded != []:
                        raw[kind] = decoded
                        break

    def _zip_columns(self, kind: str, mapping: dict, spec) -> list[dict] | None:
        names = {"start_s": spec.start, "end_s": spec.end, "text": spec.text}
        columns = {field: _json_list(mapping.get(name)) for field, name in names.items() if name}
        if all(v is None for v in columns.values()):
            return None
        lengths = {names[f]: len(v) if isinstance(v, list) else None for f, v in columns.items()}
        if None in lengths.values() or len(set(lengths.values())) != 1:
            self.issues.append(AnnotationIssue(kind, f"{SINGULAR[kind]}_malformed", f"columns {lengths} must "
                                               f"be lists of one length", {n: mapping.get(n) for n in lengths}))
            return None
        return [dict(zip(columns, values)) for values in zip(*columns.values())]

    def from_sidecars(self, kinds: list[str], raw: dict, languages: list[str]) -> None:
        self._from_sidecars_of(os.path.splitext(self.video_path)[0], kinds, raw, languages)
        if self.target != os.path.abspath(self.video_path):
            self._from_sidecars_of(os.path.splitext(self.target)[0], kinds, raw, languages)

    def from_remote_sidecars(self, url: str, kinds: list[str], raw: dict, languages: list[str]) -> None:
        """The sidecars beside a video in a bucket (the stage reads a local copy named by its content): the
        small text files named after it, fetched into a temporary folder under its own name and read there
        as local ones. One prefix listing and a request per sidecar."""
        if all(k in raw for k in kinds):
            return
        found = [u for u in S.siblings(url) if u.lower().endswith(_FILE_EXTENSIONS)]
        if not found:
            return
        with tempfile.TemporaryDirectory(prefix="vdata-sidecars-") as tmp:
            for sidecar in found:
                try:
                    data = S.read_bytes(sidecar)
                except OSError:   # gone since it was listed: as if it were not there
                    continue
                with open(os.path.join(tmp, posixpath.basename(sidecar)), "wb") as f:
                    f.write(data)
            self._from_sidecars_of(os.path.join(tmp, os.path.splitext(posixpath.basename(url))[0]), kinds, raw, languages)

    def _from_sidecars_of(self, stem: str, kinds: list[str], raw: dict, languages: list[str]) -> None:
        files = sidecar_files(stem)
        name = _nfc(os.path.basename(stem))
        for path in (files.get(name + ".json"), files.get(name + ".info.json")):
            data = self._read_json_file("sidecars", path) if path else None
            if isinstance(data, dict):
                self.from_mapping(_without_download_listings(data), kinds, raw)
        wanted = [k for k in kinds if k not in raw]
        if "subtitles" in wanted:
            self._subtitles_from(self._subtitle_candidates(stem, languages, files), raw, languages)
        if "chapters" in wanted and (path := files.get(name + ".chapters.txt")):
            raw["chapters"] = self._chapter_lines(read_text(path), require_zero_start=False)
        if "description" in wanted and (path := files.get(name + ".description")):
            raw["description"] = read_text(path)

    def from_container(self, kinds: list[str], raw: dict, languages: list[str]) -> None:
        """Kinds not yet in `raw`, from inside the video file: chapters, a text subtitle track (preferred
        languages first), title and description (vdata/media/embedded.py)."""
        wanted = [k for k in kinds if k not in raw and k in ("title", "description", "chapters", "subtitles")]
        if not wanted:
            return
        inside = read_embedded(self.video_path, languages if "subtitles" in wanted else None)
        if "title" in wanted and inside.title:
            raw["title"] = inside.title
        if "description" in wanted and inside.description:
            raw["description"] = inside.description
        if "chapters" in wanted and inside.chapters:
            raw["chapters"] = [asdict(c) for c in inside.chapters]
        if "subtitles" in wanted and inside.subtitles is not None:
            raw["subtitles"] = self._cues("subtitles", inside.subtitles)

    def _subtitles_from(self, candidates: list[tuple[str, str | None]], raw: dict, languages: list[str]) -> None:
        """The cues of the first sidecar that has any. One that gives none (empty, blank, nothing but bad
        blocks) is said and lets the next speak (`talk.en.srt`, then the container's track): an empty
        `talk.srt` left by a failed download used to hide both. Cues in a language not asked for (only a
        `talk.de.srt` in an English build) are kept, and said: the rows have no column for the language,
        and a build that wants English speech must be able to find them (`subtitle_other_language`)."""
        wanted = {iso_639_1(lang) or lang.lower() for lang in languages}
        for path, language in candidates:
            parsed = load_subtitles(path)
            cues = self._cues("subtitles", parsed)
            name = os.fsencode(os.path.basename(path)).decode("utf-8", "backslashreplace")
            if cues:
                raw["subtitles"] = cues
                if language is not None and language not in wanted:
                    self.issues.append(AnnotationIssue(
                        "subtitles", "subtitle_other_language", f"{name} is in {language!r}, not in "
                        f"subtitle_languages {list(languages)}: its {len(cues)} cue(s) are used, as no file or "
                        "track of those languages has any", name, dropped=False))
                return
            if not any(p.dropped for p in parsed.problems):   # a bad block is said already; a blank file is not
                self.issues.append(AnnotationIssue("subtitles", "subtitle_empty", f"{name} gives no subtitle cue "
                                                   "(empty, blank, or no spoken line); the next subtitle file or "
                                                   "track is read", name))

    @staticmethod
    def _subtitle_candidates(stem: str, languages: list[str],
                             files: dict[str, str] | None = None) -> list[tuple[str, str | None]]:
        """(path, ISO 639-1 language of its tag or None) of the subtitle files of a video, best first:
        `talk.srt` (then .vtt, .ass, .ssa); then the `talk.<lang>[.<flags>].srt` files (any subtitle extension, in any case: Windows tools write `.SRT`)
        of the wanted `languages`, a language matched exactly or by a tag of it (en-US, yt-dlp's en-orig,
        eng): in the order of `languages`, a file without flags before one marked for the hard of hearing
        (sdh, cc, hi) and an exact spelling before a tag; a `forced` one after every other file of the
        wanted languages (it holds only the foreign-language lines, as Plex and Jellyfin name them: taken
        before a full `talk.en-US.vtt` it made a near-empty transcript); then other languages by name."""
        prefix = _nfc(os.path.basename(stem)) + "."
        files = sidecar_files(stem) if files is None else files
        named = [lang.lower() for lang in languages]
        wanted = [iso_639_1(lang) or lang for lang in named]
        extensions = list(SUBTITLE_EXTENSIONS)
        plain, ranked = [], []
        for nfc_name, path in sorted(files.items()):
            base, ext = os.path.splitext(nfc_name)
            if ext.lower() not in SUBTITLE_EXTENSIONS:
                continue
            if len(base) < len(prefix):   # talk.srt itself
                plain.append((extensions.index(ext.lower()), path))
                continue
            tag, *flags = base[len(prefix):].lower().split(".")
            forced, flagged = "forced" in flags, bool(flags) and "forced" not in flags
            language = wanted[named.index(tag)] if tag in named else _language(tag)
            if not language:   # a tag that names no language is another video's: talk.part2.en.srt is talk.part2.mp4's
                continue
            if tag in named or language in wanted:
                order = named.index(tag) if tag in named else wanted.index(language)
                ranked.append(((0, forced, order, flagged, tag not in named, path), path, language))
            else:
                ranked.append(((1, forced, 0, flagged, True, path), path, language))
        return [(p, None) for _, p in sorted(plain)] + [(p, lang) for _, p, lang in sorted(ranked)]

    # --- decoding ---------------------------------------------------------------------------------
    def _as_path(self, kind: str, value: Any) -> str | None:
        """The file a value names, if it names one. A path-like value whose file is missing is an issue."""
        if not isinstance(value, str) or "\n" in value or len(value) > 1024:
            return None
        text = value.strip()
        for base in self.dirs:
            candidate = os.path.join(base, os.path.expanduser(text))
            if os.path.isfile(candidate):
                return candidate
        if text.lower().endswith(_FILE_EXTENSIONS) and kind not in ("title", "description"):
            self.issues.append(AnnotationIssue(kind, "annotation_file_missing", f"file {text!r} not found next "
                                               f"to the video or the manifest", text))
            return ""
        return None

    def decode(self, kind: str, value: Any) -> Any:
        path = self._as_path(kind, value)
        if path == "":
            return None
        if path:
            return self._decode_file(kind, path)
        if kind in ("title", "description", "transcript"):
            return value
        if isinstance(value, str):
            text = value.strip()
            if _JSON_START.match(text):   # "[Music] guitar", "{remastered}\n0:00 Intro" are the kind's text form
                try:
                    return self.decode(kind, json.loads(text))
                except json.JSONDecodeError as e:
                    if kind != "subtitles":
                        self.issues.append(_unparsable(kind, f"not valid JSON ({e.msg} at {e.pos})", text[:200]))
                        return None
            if kind == "labels":
                return [p.strip() for p in _LABEL_SPLIT.split(text) if p.strip()]
            if kind == "chapters":
                return self._chapter_lines(text, require_zero_start=False)
            if kind in ("subtitles", "segments") and looks_like_subtitles(text):
                return self._cues(kind, parse_subtitles(text))
            self.issues.append(_unparsable(kind, "text is neither JSON nor SRT/WebVTT", text[:200]))
            return None
        return value

    def _decode_file(self, kind: str, path: str) -> Any:
        ext = os.path.splitext(path)[1].lower()
        if ext in SUBTITLE_EXTENSIONS:
            cues = self._cues(kind, load_subtitles(path))
            if kind == "transcript":
                return " ".join(c["text"] for c in cues)
            return cues
        if ext == ".json":
            data = self._read_json_file(kind, path)
            return None if data is None else self.decode(kind, data)
        text = read_text(path)
        if kind == "chapters":
            return self._chapter_lines(text, require_zero_start=False)
        if kind == "labels":
            return label_lines(text)
        if kind in ("title", "description", "transcript"):
            return text
        return self.decode(kind, text)

    def _cues(self, kind: str, parsed) -> list[dict]:
        self.issues.extend(_problem_issues(kind, parsed))
        return [asdict(c) for c in parsed.items]

    def _chapter_lines(self, text: str, require_zero_start: bool) -> list[dict]:
        parsed = parse_chapter_lines(text, require_zero_start=require_zero_start)
        self.issues.extend(_problem_issues("chapters", parsed))
        return [asdict(c) for c in parsed.items]

    def chapters_from_description(self, description: str) -> list[dict] | None:
        """Chapters from description lines (YouTube's rule: the first must be 0:00); None when there are none.

        Nobody named the description as chapters here (`sources.chapters` reads it leniently): time lines
        that do not make YouTube chapters (not from 0:00) are a description without chapters, not bad
        chapters, so they leave no issue (no reject rows in a run that never asked for chapters)."""
        parsed = parse_chapter_lines(description, require_zero_start=True)
        if not parsed.items:
            return None
        self.issues.extend(_problem_issues("chapters", parsed))
        return [asdict(c) for c in parsed.items]

    def _read_json_file(self, kind: str, path: str) -> Any:
        try:
            return json.loads(read_text(path))
        except json.JSONDecodeError as e:
            name = os.fsencode(os.path.basename(path)).decode("utf-8", "backslashreplace")   # a name may not be UTF-8
            self.issues.append(_unparsable(kind, f"{name}: not valid JSON ({e.msg}, line {e.lineno})", name))
            return None
