"""What a push publishes of the build's strings: credential-shaped values masked in every staged file, and
the `source_meta` keys chosen (outside check h26 F16, F17).

The manifest and the card mask secrets (`vdata.teachers.redaction.redact`: URL userinfo passwords,
credential-named query parameters such as `?token=` / `X-Amz-Signature=` / `sig=`, `hf_` / `sk-` / `gh?_`
/ `AKIA` token shapes, and the given values); the data went up as the build holds it, so a tokenised input
URL (`source_uri`, `path`) or a manifest column holding a presigned URL or a token (`source_meta`) was
published verbatim. `scrub_folder` applies the same masking to every string of every staged file before
the upload: each string cell of each Parquet file (nested ones too: `options`, `evidence`, ...), every
string of each JSON / JSONL file (parsed, so the JSON stays valid), the text of the YAML / Python / Markdown
files. A file with nothing to mask is left byte for byte as the export wrote it.

`source_meta` (JSON text: a manifest row's extra columns) travels whole by default; `source_meta_keys`
keeps only the keys named (an empty list: none). Push logs the keys it publishes, and names those whose
values look like e-mail addresses: personal data that no mask covers.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field

from vdata.schemas import records as R
from vdata.teachers.redaction import redact

# a cheap first pass (RE2, vectorised): cells that may hold something `redact` masks; only those are redacted
_MAYBE = r"(?i)bearer |hf_|sk-|gh[pousr]_|AKIA|://[^/\s@]*:[^/\s@]*@|[?&;][a-z0-9_\-]+="
_EMAIL = re.compile(r"^[^@\s/:]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_TEXT_FILES = (".yaml", ".yml", ".md", ".txt", ".csv", ".tsv")   # not code (utils.py): vdata writes it


@dataclass
class Scrubbed:
    masked: Counter = field(default_factory=Counter)         # {column or file: strings masked}
    meta_keys: set = field(default_factory=set)              # source_meta keys published
    meta_dropped: set = field(default_factory=set)           # source_meta keys left out (`source_meta_keys`)
    email_keys: set = field(default_factory=set)             # published keys holding e-mail-shaped values

    def lines(self) -> list[str]:
        """What push says about it (nothing for a build with no source_meta and nothing to mask)."""
        out = []
        if self.masked:
            where = ", ".join(f"{k} {n}" for k, n in sorted(self.masked.items()))
            out.append(f"masked credential-shaped text in {sum(self.masked.values())} string(s) of the files pushed "
                       f"({where}): URL passwords, credential-named URL query parameters (token=, sig=, "
                       "X-Amz-Signature=, ...) and hf_/sk-/AKIA... tokens, as the manifest and the card mask them")
        if self.meta_keys or self.meta_dropped:
            kept = ", ".join(sorted(self.meta_keys)) or "none"
            left = f"; left out: {', '.join(sorted(self.meta_dropped))}" if self.meta_dropped else ""
            out.append(f"source_meta (the input rows' extra columns) published with the keys: {kept}{left} "
                       "(push(source_meta_keys=[...]) publishes only the keys named)")
        if self.email_keys:
            out.append(f"source_meta key(s) {', '.join(sorted(self.email_keys))} hold e-mail addresses, published as "
                       "they are: leave them out with source_meta_keys if they are personal data")
        return out


def _has_string(t) -> bool:
    import pyarrow as pa

    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_string(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _has_string(t.value_type)
    return False


def _leaves(arr) -> list:
    """The string arrays inside `arr` (list values and struct fields flattened)."""
    import pyarrow as pa

    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return [arr]
    if pa.types.is_struct(t):
        return [leaf for child in arr.flatten() for leaf in _leaves(child)]
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _leaves(arr.flatten())
    return []


def _may_hold(column, secrets: list[str]) -> bool:
    import pyarrow.compute as pc

    for chunk in column.chunks:
        for leaf in _leaves(chunk):
            if len(leaf) == 0:
                continue
            hits = pc.match_substring_regex(leaf, _MAYBE)
            for s in secrets:
                hits = pc.or_(hits, pc.match_substring(leaf, s))
            if pc.any(hits).as_py():
                return True
    return False


def _redacted(value, secrets: list[str], count: list[int]):
    if isinstance(value, str):
        out = redact(value, secrets)
        count[0] += out != value
        return out
    if isinstance(value, dict):
        return {k: _redacted(v, secrets, count) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, secrets, count) for v in value]
    return value


def _meta(values: list, keys, result: Scrubbed) -> list:
    """source_meta JSON texts with only `keys` kept (None: all); the keys seen and left out, e-mail keys."""
    out = []
    for text in values:
        try:
            meta = json.loads(text) if text else None
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            out.append(text if keys is None else None)
            continue
        if keys is not None:
            result.meta_dropped |= {k for k in meta if k not in keys}
            meta = {k: v for k, v in meta.items() if k in keys}
        result.meta_keys |= set(meta)
        result.email_keys |= {k for k, v in meta.items() if isinstance(v, str) and _EMAIL.match(v.strip())}
        out.append(json.dumps(meta, ensure_ascii=False) if keys is not None else text)
    return out


def _parquet(path: str, secrets: list[str], keys, result: Scrubbed) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    schema = pf.schema_arrow
    columns = [f.name for f in schema if _has_string(f.type)]
    if not columns:
        return
    strings = pf.read(columns=columns)
    new = {}
    if R.SOURCE_META in columns:
        values = strings[R.SOURCE_META].to_pylist()
        chosen = _meta(values, keys, result)
        if chosen != values:
            new[R.SOURCE_META] = pa.chunked_array([pa.array(chosen, pa.string())])
    for name in columns:
        column = new.get(name, strings[name])
        if not _may_hold(column, secrets):
            continue
        count = [0]
        values = [_redacted(v, secrets, count) for v in column.to_pylist()]
        if count[0]:
            result.masked[name] += count[0]
            new[name] = pa.chunked_array([pa.array(values, schema.field(name).type)])
    if not new:
        return
    table = pf.read()
    for name, column in new.items():
        i = table.column_names.index(name)
        table = table.set_column(i, table.schema.field(i), column)
    groups = pf.metadata.num_row_groups
    row_group = max(1, pf.metadata.row_group(0).num_rows) if groups else None
    del pf
    _unlink(path)
    pq.write_table(table, path, compression="zstd", row_group_size=row_group)


def _json(path: str, secrets: list[str], result: Scrubbed, rel: str) -> None:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if redact(text, secrets) == text:
        return
    count = [0]
    if path.endswith(".jsonl"):
        lines = [json.dumps(_redacted(json.loads(line), secrets, count), ensure_ascii=False) if line.strip() else line
                 for line in text.split("\n")]
        out = "\n".join(lines)
    else:
        out = json.dumps(_redacted(json.loads(text), secrets, count), ensure_ascii=False, indent=2) + "\n"
    if count[0]:
        result.masked[rel] += count[0]
        _unlink(path)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(out)


def scrub_folder(folder: str, secrets=(), source_meta_keys=None) -> Scrubbed:
    """Mask credential-shaped strings (and the given `secrets`) in every file of the staged `folder`, and keep
    only `source_meta_keys` of each row's source_meta (None: every key). Videos and zips are not read."""
    secrets = [s for s in secrets if s and len(s) >= 6]
    keys = None if source_meta_keys is None else set(source_meta_keys)
    result = Scrubbed()
    for dp, _, files in os.walk(folder):
        for name in sorted(files):
            path = os.path.join(dp, name)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            if name.endswith(".parquet"):
                _parquet(path, secrets, keys, result)
            elif name.endswith((".json", ".jsonl")):
                try:
                    _json(path, secrets, result, rel)
                except ValueError:   # not JSON after all: masked as text
                    _text(path, secrets, result, rel)
            elif name.endswith(_TEXT_FILES):
                _text(path, secrets, result, rel)
    return result


def _text(path: str, secrets: list[str], result: Scrubbed, rel: str) -> None:
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        text = fh.read()
    out = redact(text, secrets)
    if out != text:
        result.masked[rel] += 1
        _unlink(path)
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(out)


def _unlink(path: str) -> None:
    """A staged file linked to the build's own is replaced by a file, never written through the link."""
    if os.path.islink(path):
        os.remove(path)
