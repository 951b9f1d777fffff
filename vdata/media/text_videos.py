"""Text records → rendered videos + an ingest manifest (`vdata text-videos`): the input of the `t2vid` and
`t3` recipes.

A record is one JSON line: `{"id", "text", "question", "answer"}` (T2Vid: long-text instruction data,
split into chunks by `split_text`) or `{"id", "chunks": [...]}` (T3: a caption sequence, one chunk per
caption, kept as given), with any other keys passed through. Each good record becomes `<id>.mp4` (plus
its `.chunks.json` sidecar) and one manifest line `{"path", "id", "segments", ...}` whose `segments` are
the chunks with their on-screen times, so the `annotations` stage reads them as the video's segments and
the other keys (question, answer) travel as `source_meta`. A bad record is one line of `rejects.jsonl`
with its reason (`bad_encoding`, `bad_json`, `bad_record`, `qa_incomplete`, `no_text`, `text_too_long`,
`font_lacks_glyphs`, ...), and the others go on. The file is UTF-8, with a BOM or not (Windows editors
write one), with LF or CRLF line ends, like the other manifests vdata reads.
"""
from __future__ import annotations

import json
import os
import re

from . import MediaError
from .text_frames import render_text_video, split_text

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")   # the id becomes a file name


def _chunks_of(record: dict, max_words: int) -> list[str]:
    if "chunks" in record:
        chunks = record["chunks"]
        if not isinstance(chunks, list) or not all(isinstance(c, str) for c in chunks):
            raise MediaError("bad_record", "`chunks` must be a list of strings")
        return [" ".join(c.split()) for c in chunks]
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise MediaError("no_text", "the record has no `text` (or `chunks`)")
    return split_text(text, max_words)


def _check(record) -> str:
    if not isinstance(record, dict):
        raise MediaError("bad_record", "a record must be a JSON object")
    rid = record.get("id")
    if not isinstance(rid, str) or not SAFE_ID.match(rid):
        raise MediaError("bad_record", f"`id` must be a string of letters, digits, '.', '_' or '-': {rid!r}")
    has_q, has_a = bool(str(record.get("question") or "").strip()), bool(str(record.get("answer") or "").strip())
    if has_q != has_a:
        raise MediaError("qa_incomplete", "the record has a question without an answer, or an answer without one")
    return rid


_UNDECODED = re.compile("[\udc80-\udcff]")   # a byte that is not UTF-8, kept by errors="surrogateescape"


def _decoded(line: str) -> str:
    # undecodable bytes are kept as escapes and refused per line: one line that is not UTF-8 is one
    # reject, where a strict decode stopped the whole run at it
    bad = _UNDECODED.search(line)
    if bad:
        raise MediaError("bad_encoding", f"not UTF-8: byte 0x{ord(bad.group()) - 0xDC00:02x} at column "
                         f"{bad.start() + 1}")
    return line


def write_text_videos(records_path: str, out_dir: str, *, max_words: int = 40, seconds_per_chunk: float = 2.0,
                      size: tuple[int, int] = (640, 360), fps: int = 2, font_path: str | None = None) -> dict:
    """Render every record of `records_path` (JSONL) under `out_dir`; writes `manifest.jsonl` and
    `rejects.jsonl` there and returns `{"videos": n, "rejects": m}`. `font_path`: a font file to draw
    with (one with the records' scripts: Chinese needs a CJK font), else the bundled DejaVu Sans."""
    os.makedirs(out_dir, exist_ok=True)
    seen: set[str] = set()
    kept = rejected = 0
    # utf-8-sig: a BOM (Windows editors write one) is no part of the first record; universal newlines
    # read CRLF (and CR) line ends
    with open(records_path, encoding="utf-8-sig", errors="surrogateescape") as src, \
            open(os.path.join(out_dir, "manifest.jsonl"), "w", encoding="utf-8") as manifest, \
            open(os.path.join(out_dir, "rejects.jsonl"), "w", encoding="utf-8") as rejects:
        for line_no, line in enumerate(src, 1):
            rid = None
            try:
                line = _decoded(line)
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as e:
                    raise MediaError("bad_json", f"not JSON: {e}")
                rid = record.get("id") if isinstance(record, dict) else None   # named in its reject
                rid = _check(record)
                if rid in seen:
                    raise MediaError("duplicate_id", f"id {rid!r} was already rendered")
                chunks = _chunks_of(record, max_words)
                path = os.path.join(out_dir, f"{rid}.mp4")
                sidecar = render_text_video(path, chunks, seconds_per_chunk, size, fps, font_path=font_path)
            except MediaError as e:
                rejects.write(json.dumps({"line": line_no, "id": rid, "reason": e.reason, "message": e.message},
                                         ensure_ascii=False) + "\n")
                rejected += 1
                continue
            seen.add(rid)
            extra = {k: v for k, v in record.items() if k not in ("id", "text", "chunks", "path", "segments")}
            segments = [{k: c[k] for k in ("start_s", "end_s", "text")} for c in sidecar["chunks"]]
            manifest.write(json.dumps({"path": f"{rid}.mp4", "id": rid, "segments": segments, **extra},
                                      ensure_ascii=False) + "\n")
            kept += 1
    return {"videos": kept, "rejects": rejected}
