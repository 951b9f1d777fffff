"""The stage result cache: what each stage computed for an input row, on disk, so that a rebuild after a
config change recomputes only from the changed stage on."""
from __future__ import annotations

import os
import threading

from vdata.media import storage as S
from vdata.schemas import records as R
from vdata.stages.base import Reject


class StageResultCache:
    """Per-stage results on disk, keyed by the stage's config-hash chain and the input row's identity.

    A rebuild after a config change recomputes only from the changed stage on: the stages before it
    find their results here. Only what the stage writes is stored; on a hit the result is rebuilt on
    top of the current input row, so the same video arriving under another path gets its own path.
    """

    def __init__(self, root: str, stage_name: str, stage_hash: str, writes: tuple[str, ...]):
        self.dir = os.path.join(root, "stages", f"{stage_name}-{stage_hash}")
        self.writes = writes

    @staticmethod
    def identity(row: dict) -> str:
        for col in (R.SAMPLE_ID, R.CLIP_ID, R.VIDEO_ID):
            if row.get(col):
                return f"{col}={row[col]}"
        path = row.get(R.PATH) or ""
        try:
            st = S.info(path)   # a URL's version is its ETag (or mtime): the same on every node
            return f"{R.SOURCE_URI}={row.get(R.SOURCE_URI)}|{st['size']}|{st['version']}"
        except (OSError, ValueError):
            return f"{R.SOURCE_URI}={row.get(R.SOURCE_URI)}|missing"

    def path_for(self, row: dict) -> str:
        """Where `row`'s results are kept. The caller asks once and passes it to `get` and `put`: an input
        that has no id yet (the first stage's) is identified by a stat (a HEAD for a URL)."""
        import hashlib

        key = hashlib.blake2b(self.identity(row).encode(), digest_size=16).hexdigest()
        return os.path.join(self.dir, key[:2], key + ".pkl")

    def get(self, row: dict, path: str | None = None):
        import pickle

        try:
            with open(path or self.path_for(row), "rb") as f:
                stored = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError):
            return None
        out = []
        for kind, values, extra in stored:
            merged = {**row, **values}
            out.append(merged if kind == "row" else Reject(merged, *extra))
        return out

    def put(self, row: dict, results: list, path: str | None = None) -> None:
        import pickle

        stored = []
        for res in results:
            if isinstance(res, Reject):
                if res.reason == "error":
                    return   # unexpected failures are not remembered: a re-run should try again
                stored.append(("reject", {c: res.row.get(c) for c in self.writes if c in res.row},
                               (res.reason, res.message, res.detail)))
            else:
                stored.append(("row", {c: res.get(c) for c in self.writes}, None))
        path = path or self.path_for(row)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # a name of this writer's own: two workers (or two builds sharing a cache) that finish the same
        # video each replace the entry whole, never each other's half-written file
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(stored, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
