"""Resuming an interrupted build: a re-run into the same folder reuses the items a run before it finished.

An item is finished when its video was renamed into place (render_item writes `<media>.mp4.part.mp4` and
renames it, so a video under its final name is whole), it passed verification (a failed one's video is
removed), and its record was appended to the journal `cache/items.jsonl`: its key, the video's sha256 and
decoded digest, and the verification detail that goes into items.parquet. A re-run reuses a video only when
all three still agree: the record's key equals the key of the item as planned now, and the file on disk has
the recorded sha256. Everything else is rendered again.

The key (`item_key`) holds what the video's bytes and its verdict depend on: the item's placements (needle
content ids, labels, times, boxes), the needles it names as absent, its base haystack (content-derived id),
the render settings with the ffmpeg build and the manifest version (render rules), and the verification
settings. A changed config that changes any of them changes the key, so a stale video is never reused; one
that leaves an item alone (another length added, other tasks) leaves its key alone, so it is reused.
"""
from __future__ import annotations

import hashlib
import json
import os

from .model import ItemPlan

JOURNAL = os.path.join("cache", "items.jsonl")


def item_key(plan: ItemPlan, render: dict, version: int, verify: dict | None) -> str:
    """`render`: the manifest header's render settings (size, fps, encode, ffmpeg, determinism); `version`:
    the manifest's; `verify`: the verification settings, None when the build does not verify."""
    data = {"media_id": plan.media_id, "haystack_id": plan.base.base_id, "render": render, "version": version,
            "verify": verify, "placements": [p.row() for p in plan.placements],
            "absent": [p.row() for p in plan.absent]}
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


class ItemJournal:
    """The finished items of the builds into one folder, by media id (the last record of each wins)."""

    def __init__(self, out_dir: str):
        self.path = os.path.join(out_dir, JOURNAL)
        self.records: dict[str, dict] = {}
        if os.path.exists(self.path):
            with open(self.path) as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:   # the line an interrupted run was writing
                        continue
                    if isinstance(rec, dict) and "media_id" in rec:
                        self.records[rec["media_id"]] = rec
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".part"   # compacted (one record per media id), then appended to as items finish
        with open(tmp, "w") as f:
            for rec in self.records.values():
                f.write(json.dumps(rec, sort_keys=True) + "\n")
        os.replace(tmp, self.path)
        self._f = open(self.path, "a")

    def reusable(self, media_id: str, key: str, video: str, sha256) -> dict | None:
        """The record of a finished video that this item, as planned now, may reuse, else None.
        `sha256(path)`: the file's digest (the check that the file is the one recorded)."""
        rec = self.records.get(media_id)
        if rec is None or rec.get("key") != key or not os.path.isfile(video):
            return None
        return rec if sha256(video) == rec.get("sha256") else None

    def add(self, media_id: str, key: str, digests: dict, detail: str | None) -> None:
        rec = {"media_id": media_id, "key": key, **digests, "detail": detail}
        self.records[media_id] = rec
        self._f.write(json.dumps(rec, sort_keys=True) + "\n")
        self._f.flush()   # a record is only worth something if it survives the interruption that follows

    def close(self) -> None:
        self._f.close()
