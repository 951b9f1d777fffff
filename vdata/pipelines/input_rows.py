"""The row every input kind makes for one video (ingest.py's folders, globs and manifests; hf_input.py's
datasets): where it came from, where to read it, and what the source said of it."""
from __future__ import annotations

import json
import os

from vdata.media import storage as S
from vdata.schemas import records as R


def source_row(uri: str, path: str, meta: dict | None = None) -> dict:
    path = path if S.is_remote(path) else os.path.abspath(path)
    return {R.SOURCE_URI: uri, R.PATH: path, R.SOURCE_META: json.dumps(meta, default=str) if meta else None}
