"""What a push puts into a Hub repo and takes out of it (outside check h26 F14, F7, L1, L2, L3).

Its files: what it may delete or replace, and what it uploaded; the card's text that only a pushed card
needs (the builder's paths masked, the llava usage); `vdata push`'s exit status (`cli_push`).

A push deletes only files vdata itself wrote. Every push records the repo paths it wrote in `RECORD`
(`.vdata-push.json`, committed after the upload, so an interrupted push keeps the record of the last
complete one); the next push deletes the recorded paths it does not write again (an old shard, split,
subset or video) and nothing else: a LICENSE, `eval/results.json` or `extra/more.parquet` the owner added
stay, whatever their names. The record is read back from the repo listing: a candidate set of the repo's
paths is taken as the record when its rendering has the record's git blob id (exact, no download), else
the file is downloaded; a record that can be read neither way deletes nothing and says so.

A repo without a record that holds files (someone's existing dataset, a typo in `--repo`, a repo an older
vdata pushed) is refused before anything is uploaded, naming the files, unless `allow_foreign` (`vdata push
--allow-foreign-files`): then nothing of it is deleted and only the files at paths vdata writes are replaced.
A file vdata did not write at a path this push writes is refused the same way in a repo vdata pushed before.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field

RECORD = ".vdata-push.json"
HUB_FILES = {".gitattributes"}            # the Hub writes it into every new repo
VDATA_FOLDERS = ("data/", "videos/", "lmms_eval/")
UPLOAD_FAILED = 4                         # `vdata push` exit status of a failed upload (2: a command to fix)
ALLOW_FOREIGN_HELP = ("push into a repo that holds files vdata push did not write (refused otherwise): none of them is "
                      "deleted, those at paths vdata writes (README.md, ...) are replaced")


class HubError(RuntimeError):
    """A push or card that cannot go ahead (no token, offline mode, bad repo id, a card path that cannot be
    written, a repo holding files vdata did not write); the message says what to do."""


class UploadFailed(RuntimeError):
    """The Hub or the network failed during a push (exit status UPLOAD_FAILED): re-running resumes."""


def blob_oid(data: bytes) -> str:
    """The git blob id the Hub lists for a file of these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def record_bytes(paths) -> bytes:
    return (json.dumps({"vdata_push": 1, "about": "the files the last vdata push wrote into this repo; the next one "
                        "deletes only these", "files": sorted(paths)}, indent=1) + "\n").encode()


def remote_files(api, repo_id: str) -> dict[str, str]:
    """{path: git blob id} of every file in the repo."""
    from huggingface_hub.hf_api import RepoFile

    return {f.path: f.blob_id for f in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True)
            if isinstance(f, RepoFile)}


def _layout_like(p: str) -> bool:
    """A path of one of vdata's layouts (a guess, only used as a candidate checked against the record's id)."""
    return p.startswith(VDATA_FOLDERS) or ("/" not in p and (p in ("README.md", "utils.py") or p.endswith(
        (".json", ".yaml")) or bool(re.fullmatch(r"videos_\d{3}\.zip", p))))


def _read_record(api, repo_id: str, remote: dict, ours) -> set | None:
    """The paths the repo's record lists, or None when it cannot be read."""
    others = [p for p in remote if p != RECORD and p not in HUB_FILES]
    for candidate in (others, [p for p in others if p in ours], [p for p in others if _layout_like(p)]):
        if blob_oid(record_bytes(candidate)) == remote[RECORD]:
            return set(candidate)
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session

    try:   # one GET of the file (`resolve`), redirects followed
        r = get_session().get(hf_hub_url(repo_id, RECORD, repo_type="dataset", endpoint=api.endpoint),
                              headers=build_hf_headers(token=api.token), follow_redirects=True, timeout=60)
        return {str(p) for p in json.loads(r.content)["files"]} if r.status_code == 200 else None
    except Exception:   # a Hub or stand-in that does not serve it, a file edited by hand
        return None


def _listed(paths, n: int = 6) -> str:
    paths = sorted(paths)
    return ", ".join(paths[:n]) + (f", ... (+{len(paths) - n} more)" if len(paths) > n else "")


def upload_paths(folder: str, ignore: list, skip: str) -> list[str]:
    """The repo paths `upload_folder` sends from `folder` (its ignore patterns applied), and RECORD."""
    from huggingface_hub.utils import filter_repo_objects

    rel = [os.path.relpath(os.path.join(dp, f), folder).replace(os.sep, "/")
           for dp, _, fn in os.walk(folder, followlinks=True) for f in fn if f != skip]
    return sorted(set(filter_repo_objects(rel, ignore_patterns=ignore or None)) | {RECORD})


@dataclass
class RepoPlan:
    before: dict                                    # {path: blob id} of the repo before the push
    delete: list = field(default_factory=list)      # recorded paths this push does not write
    foreign: list = field(default_factory=list)     # files vdata did not write, kept
    replaced: list = field(default_factory=list)    # of those, at a path this push writes (allow_foreign)
    record_known: bool = True


def plan_repo(api, repo_id: str, folder: str, ours: list[str], allow_foreign: bool = False) -> RepoPlan:
    """What the push may delete and which files it keeps; a HubError (nothing uploaded) for a repo that
    holds files vdata did not write, unless `allow_foreign`."""

    remote = remote_files(api, repo_id)
    others = {p: o for p, o in remote.items() if p != RECORD and p not in HUB_FILES}

    def differs(p: str) -> bool:   # a file there already identical to ours is a resumed upload's, not foreign
        with open(os.path.join(folder, p), "rb") as fh:
            return blob_oid(fh.read()) != others[p]

    if RECORD in remote:
        previous = _read_record(api, repo_id, remote, set(ours))
        if previous is None:
            return RepoPlan(remote, foreign=sorted(set(others) - set(ours)), record_known=False)
        foreign = sorted(p for p in set(others) - previous if p not in ours or differs(p))
        plan = RepoPlan(remote, delete=sorted((previous & set(others)) - set(ours)), foreign=foreign,
                        replaced=[p for p in foreign if p in ours])
        refuse, what = plan.replaced, (f"{len(plan.replaced)} file(s) vdata did not write at paths this push writes "
                                       f"({_listed(plan.replaced)})")
        older = ""
    else:
        foreign = sorted(p for p in others if p not in ours or differs(p))
        plan = RepoPlan(remote, foreign=foreign, replaced=[p for p in foreign if p in ours])
        refuse, what = foreign, f"{len(foreign)} file(s) that vdata push did not write ({_listed(foreign)})"
        older = (f" (a repo an older vdata pushed has no {RECORD} yet: the flag pushes into it once, keeping its "
                 "earlier files)")
    if refuse and not allow_foreign:
        raise HubError(f"{repo_id} holds {what}: nothing was uploaded or deleted. Push to a new repo, or pass "
                       f"--allow-foreign-files to push into it anyway{older}: vdata deletes none of those files and "
                       f"replaces the {len(plan.replaced)} at paths it writes"
                       + (f" ({_listed(plan.replaced, 4)})" if plan.replaced else ""))
    return plan


def plan_lines(repo_id: str, plan: RepoPlan) -> list[str]:
    """What the push deletes, replaces and keeps, a line each (nothing when it touches no file of others)."""
    lines = []
    if plan.delete:
        lines.append(f"deleting {len(plan.delete)} file(s) an earlier vdata push wrote to {repo_id} and this one does "
                     f"not: {_listed(plan.delete)}")
    if not plan.record_known:
        lines.append(f"could not read {repo_id}'s {RECORD} (what the last push wrote): no file is deleted; "
                     f"{len(plan.foreign)} file(s) this push does not write stay: {_listed(plan.foreign)}")
    elif plan.foreign:
        kept = [p for p in plan.foreign if p not in plan.replaced]
        if kept:
            lines.append(f"keeping {len(kept)} file(s) vdata did not write: {_listed(kept)}")
        if plan.replaced:
            lines.append(f"replacing {len(plan.replaced)} file(s) vdata did not write (--allow-foreign-files): "
                         f"{_listed(plan.replaced)}")
    return lines


def write_record(folder: str, ours: list[str]) -> None:
    with open(os.path.join(folder, RECORD), "wb") as fh:
        fh.write(record_bytes(p for p in ours if p != RECORD))


def commit_record(api, repo_id: str, folder: str, plan: RepoPlan, message: str):
    """Commit the record after the upload (the CommitInfo, or None when the repo already holds it)."""
    with open(os.path.join(folder, RECORD), "rb") as fh:
        data = fh.read()
    if plan.before.get(RECORD) == blob_oid(data):
        return None
    return api.upload_file(path_or_fileobj=data, path_in_repo=RECORD, repo_id=repo_id, repo_type="dataset",
                           commit_message=message)


def delete_patterns(paths: list[str]) -> list[str] | None:
    """Exact paths as `upload_folder` delete patterns (fnmatch: `[`, `*`, `?` escaped)."""
    import glob

    return [glob.escape(p) for p in paths] or None


def changed(before: dict, after: dict, ours: list[str]) -> int:
    """How many of the pushed paths the push uploaded (new or changed blob id)."""
    return sum(1 for p in ours if p in after and before.get(p) != after[p])


_LOCAL_PATH = re.compile(r"""(?<=[\s\[,{"'])~?/[^\s"',\]}]+""")


def published_config(text: str, local: bool) -> str:
    """The config as a pushed card shows it: every absolute path of the builder's machine (`input` globs,
    `output.dir`, a model folder) as `<local>/` and its last part (or its glob), as the pushed Parquet names
    no path of that machine (outside check h26 L1); `vdata card`'s local card keeps them."""
    def mask(m: re.Match) -> str:
        parts = [p for p in m.group(0).split("/") if p not in ("", "~")]
        globbed = next((i for i, p in enumerate(parts) if any(c in p for c in "*?[")), len(parts) - 1)
        return "/".join(["<local>", *parts[globbed:]]) if parts else m.group(0)

    masked = _LOCAL_PATH.sub(mask, text)
    return text if local or masked == text else \
        "# paths of the machine that built it are shown as <local>/<last part>\n" + masked


def llava_usage(text: str, repo: str, name: str, layout_rows: dict) -> str:
    """The llava card's usage: the records' `video` paths are relative to `videos/`, which LLaVA-NeXT takes as
    `--video_folder` (outside check h26 F7), and the records each file holds (L8)."""
    text = text.replace("# video paths are relative to the repo root; fetch the files with",
                        "# the records' video paths are relative to the repo's videos/ folder; fetch the files with")
    files = ", ".join(f"`{f}` ({llava_config(f)}: {n} records)" for f, n in layout_rows.items())
    usage = (f"### LLaVA-NeXT\n\nThe JSON files at the repo root are LLaVA-Video records{': ' + files if files else ''}. "
             "Their `video` paths are relative to the `videos/` folder, not the repo root: give that folder as the "
             f"video folder.\n\n```bash\nhf download {repo} --repo-type dataset --local-dir data/{name}\n"
             f"python llava/train/train_mem.py ... --data_path data/{name}/<file>.json --video_folder data/{name}/videos"
             "\n```\n\n")
    for anchor in ("### LLaMA-Factory", "## License"):
        if anchor in text:
            return text.replace(anchor, usage + anchor, 1)
    return text + "\n" + usage


def llava_config(fname: str) -> str:
    for suffix, config in (("_oe_qa.json", "open_ended"), ("_mc_qa.json", "multiple_choice"), ("_cap.json", "captions")):
        if fname.endswith(suffix):
            return config
    return fname


def cli_push(push, out_dir: str, *, echo, repo_id, private, fmt, endpoint, time_format, staging_dir, splits,
             allow_foreign=False, source_meta_keys=None) -> int:
    """`vdata push` (vdata/cli_hub.py): `push` (vdata.hub's), its lines, and its exit status: 0 pushed, 2 a command
    to fix, UPLOAD_FAILED an upload to run again."""
    from vdata.exporters import ExportError

    try:
        res = push(out_dir, repo_id, private=private, format=fmt, endpoint=endpoint, time_format=time_format,
                   staging_dir=staging_dir, splits=splits or None, allow_foreign_files=allow_foreign,
                   source_meta_keys=list(source_meta_keys) if source_meta_keys else None,
                   log=lambda m: echo(m, err=True))
    except UploadFailed as e:
        echo(f"error: {e}", err=True)
        return UPLOAD_FAILED
    except (HubError, ExportError) as e:
        echo(f"error: {e}", err=True)
        return 2
    configs = ", ".join(c["config_name"] for c in res.configs)
    if res.uploaded or res.deleted:
        echo(f"pushed to {res.url}: {res.uploaded} file(s) uploaded, {len(res.deleted)} deleted, of the "
             f"{res.files} this push writes (commit {res.commit[:12]}); configs: {configs}")
    else:
        echo(f"nothing changed: {res.url} already holds the {res.files} file(s) this push writes (commit "
             f"{res.commit[:12]}); configs: {configs}")
    return 0


def hub_failure(e: Exception, repo_id: str) -> Exception:
    """A HubError (exit 2) when the Hub refused the token or the repo, else an UploadFailed (exit 4)."""

    status = getattr(getattr(e, "response", None), "status_code", None)
    text = " ".join(str(e).split())   # the Hub's error text follows the first line
    detail = f"{type(e).__name__}: {text[:300] if text else 'no detail'}"
    if status in (401, 403):
        return HubError(f"the Hub refused to let this token write to {repo_id} ({detail}): check HF_TOKEN / `hf auth "
                        "login` and the repo's owner")
    return UploadFailed(f"upload to {repo_id} failed ({detail}); run the same push again to resume: the files already "
                        "on the Hub are skipped")


def visibility(api, repo_id: str, private: bool) -> bool:
    """Whether the repo is private, after making an existing public one private when `private` asks for it
    (`create_repo(exist_ok=True)` leaves an existing repo as it is). A repo that stays public although asked
    private is a HubError: nothing is uploaded to it. A private repo is never made public."""

    is_private = bool(api.repo_info(repo_id, repo_type="dataset").private)
    if private and not is_private:
        try:
            api.update_repo_settings(repo_id, repo_type="dataset", private=True)
            is_private = bool(api.repo_info(repo_id, repo_type="dataset").private)
        except Exception as e:   # HTTP errors from the Hub (403: not the owner); never echo headers
            raise HubError(f"{repo_id} exists and is public, and making it private failed ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else 'no detail'}); nothing was uploaded") from None
        if not is_private:
            raise HubError(f"{repo_id} exists and is public, and it stayed public when made private; nothing was "
                           "uploaded (change its visibility in its settings on the Hub, or push to a new repo)")
    return is_private
