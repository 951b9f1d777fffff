"""`vdata validate`'s look at the inputs (`preflight` calls it): each listed as the build will list it, so
that a missing folder, a glob that matches nothing or a manifest that cannot be read is said with its key
before anything runs. The listings are kept (`listed`) for the build to reuse."""
from __future__ import annotations

import os

from vdata.media import storage as S
from vdata.schemas import records as R
from vdata.schemas.annotation_formats import FOLDER_FORMATS
from vdata.schemas.config import BuildConfig, ConfigError


def input_problems(cfg: BuildConfig, notes: list[str] | None = None,
                   listed: dict[int, list[dict]] | None = None) -> list[str]:
    """Inputs that do not exist or match no file (unless `allow_empty`), found by listing them as the
    build will; a Hugging Face input as far as it can be opened without downloading it (hf_input.py). `notes`
    (`vdata validate`'s) gets the manifest records a build will reject at ingest (`manifest_row_malformed`:
    a row of the wrong width, a line that is not JSON, a record naming no file)."""
    from .hf_input import hf_problems
    from .ingest import NOT_FOUND, _from_glob, _from_manifest, _from_path

    out = []
    for i, spec in enumerate(cfg.input):
        where = f"input[{i}]"
        if spec.hf is not None:
            out += hf_problems(spec, cfg, where)
            continue
        key = next(k for k in ("path", "glob", "manifest") if getattr(spec, k) is not None)
        untaken: dict[str, int] | None = {} if notes is not None else None   # `vdata validate`: types a folder leaves
        try:
            found = {"path": lambda: _from_path(spec, cfg, where, untaken),
                     "glob": lambda: _from_glob(spec, cfg, where),
                     "manifest": lambda: _from_manifest(spec, cfg, where)}[key]()
        except ConfigError as e:
            out.append(str(e))
            continue
        except Exception as e:   # a store's own errors (botocore's unreachable endpoint is no OSError)
            if not S.is_remote(cfg.resolve(getattr(spec, key))):
                raise
            detail = str(e).splitlines()[0] if str(e) else "no detail"
            out.append(f"{where}.{key}: {getattr(spec, key)!r} cannot be listed: {type(e).__name__}: {detail}")
            continue
        if listed is not None and spec.format not in FOLDER_FORMATS:   # a folder format's archives: at ingest
            listed[i] = found
        if untaken:
            shown = ", ".join(f"{n} {ext}" for ext, n in sorted(untaken.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
            notes.append(f"{where}.path: {sum(untaken.values())} file(s) not taken for their extension ({shown}); "
                         f"if they are videos, list their extensions in {where}.extensions")
        bad = [r for r in found if r.get(R.REJECT_REASON)]
        if notes is not None and bad:
            shown = "; ".join(r[R.REJECT_MESSAGE] for r in bad[:3]) + ("; ..." if len(bad) > 3 else "")
            notes.append(f"{where}.{key}: {len(bad)} of {len(found)} records will be ingest rejects ({shown})")
        if spec.format is not None and found:
            named = [r for r in found if not r.get(R.REJECT_REASON)]
            # the listing of the videos folder said which are there (a request each in a bucket, otherwise)
            absent = [r[R.PATH] for r in named if r[R.PATH].endswith(NOT_FOUND)]
            if absent and len(absent) == len(named) and not spec.allow_empty:
                folder = cfg.resolve(spec.videos) if spec.videos else "its folder"
                out.append(f"{where}.videos: none of the {len(named)} videos {spec.manifest!r} names is in {folder} "
                           f"(looked for {absent[0]}, ...); set {where}.allow_empty: true if that is expected")
            elif absent and notes is not None:
                shown = "; ".join(absent[:3]) + ("; ..." if len(absent) > 3 else "")
                notes.append(f"{where}.videos: {len(absent)} of the {len(named)} videos {spec.manifest!r} names are "
                             f"not there; the build rejects them missing_file, and retries them when run again "
                             f"({shown})")
        if key == "manifest" and spec.format is None and found:
            # a plain manifest's local paths, stat-ed (cheap; a bucket's would cost a request each: ingest says those)
            named = [r[R.PATH] for r in found if not r.get(R.REJECT_REASON) and not S.is_remote(r[R.PATH] or "")]
            absent = [p for p in named if not os.path.exists(p)]
            if absent and len(absent) == len(found) and not spec.allow_empty:
                out.append(f"{where}.manifest: none of the {len(found)} files {spec.manifest!r} lists is there "
                           f"(looked for {absent[0]}, ...); set {where}.allow_empty: true if that is expected")
            elif absent and notes is not None:
                notes.append(f"{where}.manifest: {len(absent)} of the {len(found)} files {spec.manifest!r} lists are not "
                             f"there; the build rejects them missing_file, and retries them when run again "
                             f"({'; '.join(absent[:3])}{'; ...' if len(absent) > 3 else ''})")
        if not found and not spec.allow_empty:
            kinds = f" (files ending {', '.join(spec.extensions)})" if key == "path" else ""
            out.append(f"{where}.{key}: {getattr(spec, key)!r} matches no file{kinds}, looked in "
                       f"{cfg.resolve(getattr(spec, key))}; set {where}.allow_empty: true if that is expected")
    return out
