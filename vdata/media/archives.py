"""Videos kept inside tar archives (webdataset shards, as video2dataset writes them with `output_format:
webdataset`): stages read videos by path, so each one a build uses is extracted once into its media folder.

A file's name there comes from the archive (its path, size and modification time) and the member's name,
not from the bytes: a re-run finds what an earlier one extracted without reading the archive again, and a
shard rewritten since (another size or time) is extracted anew. Each archive is read once for all of its
members (`tarfile`'s lookup by name walks the whole index each time)."""
from __future__ import annotations

import hashlib
import os
import tarfile

from vdata.media import storage as S


def member_path(archive: str, member: str, media_dir: str) -> str:
    st = os.stat(archive)
    digest = hashlib.sha1(f"{os.path.abspath(archive)}|{st.st_size}|{st.st_mtime_ns}|{member}".encode()).hexdigest()
    return S.join(media_dir, f"tar-{digest[:20]}{os.path.splitext(member)[1].lower()}")


def extract_members(wanted: list[tuple[str, str]], media_dir: str) -> dict[tuple[str, str], str]:
    """{(archive, member): the extracted file} for every pair of `wanted`; one not extracted yet is written
    whole (a temp file renamed into place, so an interrupted build leaves no partial video)."""
    paths = {pair: member_path(*pair, media_dir) for pair in dict.fromkeys(wanted)}
    missing: dict[str, list[str]] = {}
    for (archive, member), path in paths.items():
        if not S.exists(path):
            missing.setdefault(archive, []).append(member)
    for archive, members in missing.items():
        S.makedirs(media_dir)
        with tarfile.open(archive) as tar:
            by_name = {m.name: m for m in tar.getmembers()}
            for member in members:
                data = tar.extractfile(by_name[member]).read()
                S.write_bytes(paths[(archive, member)], data)
    return paths
