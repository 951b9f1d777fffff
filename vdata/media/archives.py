"""Videos kept inside tar archives (webdataset shards, as video2dataset writes them with `output_format:
webdataset`): stages read videos by path, so each one a build uses is extracted once into its media folder.
An archive may be a URL (a shard in a bucket): it is read from a local copy, named by the object's version.

A file's name there comes from the archive (its path, size and modification time) and the member's name,
not from the bytes: a re-run finds what an earlier one extracted without reading the archive again, and a
shard rewritten since (another size or time) is extracted anew. Each archive is read once for all of its
members (`tarfile`'s lookup by name walks the whole index each time)."""
from __future__ import annotations

import hashlib
import os
import tarfile

from vdata.media import storage as S


def shard_copy(archive: str) -> str:
    """A local file to read `archive` from: itself, or for a URL (a shard in a bucket) a copy fetched once
    into ~/.cache/vdata/remote-shards (tarfile seeks member to member: over HTTP, a request each)."""
    return S.local_copy(archive, os.path.join(os.path.expanduser("~"), ".cache", "vdata", "remote-shards"))


def _signature(archive: str) -> str:
    if S.is_remote(archive):   # the object's own version: a local copy's time changes as the cache uses it
        meta = S.info(archive)
        return f"{archive}|{meta['size']}|{meta['version']}"
    st = os.stat(archive)
    return f"{os.path.abspath(archive)}|{st.st_size}|{st.st_mtime_ns}"


def member_path(signature: str, member: str, media_dir: str) -> str:
    digest = hashlib.sha1(f"{signature}|{member}".encode()).hexdigest()
    return S.join(media_dir, f"tar-{digest[:20]}{os.path.splitext(member)[1].lower()}")


def extract_members(wanted: list[tuple[str, str]], media_dir: str) -> tuple[dict, dict]:
    """({(archive, member): the extracted file}, {(archive, member): why it could not be extracted}) for the
    pairs of `wanted`. One not extracted yet is written whole (a temp file renamed into place, so an
    interrupted build leaves no partial video); a shard cut short or unreadable fails only its own members."""
    paths: dict[tuple[str, str], str] = {}
    failed: dict[tuple[str, str], str] = {}
    signatures: dict[str, str] = {}   # one stat per archive, not one per member
    for archive, member in dict.fromkeys(wanted):
        try:
            signature = signatures.get(archive) or signatures.setdefault(archive, _signature(archive))
        except OSError as e:   # the archive is gone since it was listed
            failed[(archive, member)] = f"{type(e).__name__}: {e}"
            continue
        paths[(archive, member)] = member_path(signature, member, media_dir)
    missing: dict[str, list[str]] = {}
    for (archive, member), path in paths.items():
        if not S.exists(path):
            missing.setdefault(archive, []).append(member)
    for archive, members in missing.items():
        S.makedirs(media_dir)
        try:
            with tarfile.open(shard_copy(archive)) as tar:
                by_name = {m.name: m for m in tar.getmembers()}
                for member in members:
                    try:
                        S.write_bytes(paths[(archive, member)], tar.extractfile(by_name[member]).read())
                    except (OSError, EOFError, KeyError, tarfile.TarError) as e:
                        failed[(archive, member)] = f"{type(e).__name__}: {e}"
        except (OSError, EOFError, tarfile.TarError) as e:
            failed.update({(archive, m): f"{type(e).__name__}: {e}" for m in members})
    return {pair: path for pair, path in paths.items() if pair not in failed}, failed
