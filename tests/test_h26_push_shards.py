"""h26 F18: the Parquet export / push wrote each shard (up to 20,000 rows) as ONE row group: 1.5-3 GB for the
frames (`clips`) config, which the Hub viewer refuses and a `datasets` reader holds in memory at once. Shards
are now sized by bytes (500 MB uncompressed, as `datasets`' push_to_hub) and row groups too (100 MB), with
at most 100 rows per group in a table with binary (JPEG frames) columns."""
from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

from vdata.exporters import parquet as P
from vdata.exporters.base import ExportResult
from vdata.schemas import records as R

FRAME_BYTES = 40_000


def _clips(n: int) -> pa.Table:
    """`n` clip rows with two frames of FRAME_BYTES random bytes each (JPEG-sized, incompressible)."""
    frames = [[{R.FRAME_TIMESTAMP_S: 0.5, R.FRAME_JPEG: os.urandom(FRAME_BYTES)},
               {R.FRAME_TIMESTAMP_S: 1.5, R.FRAME_JPEG: os.urandom(FRAME_BYTES)}] for _ in range(n)]
    return pa.table({R.CLIP_ID: [f"c{i:05d}" for i in range(n)], R.FRAMES: pa.array(frames, R.FIELD_TYPES[R.FRAMES])})


def _files(dest) -> list[str]:
    folder = os.path.join(dest, "data", R.CLIPS_TABLE)
    return sorted(os.path.join(folder, f) for f in os.listdir(folder))


def test_frames_shards_have_row_groups_of_at_most_100_rows(tmp_path):
    table = _clips(250)
    result = ExportResult("parquet", str(tmp_path))
    P.write_subsets(result, str(tmp_path), table, [R.CLIPS_TABLE] * table.num_rows, P.ROWS_PER_SHARD)
    (path,) = _files(tmp_path)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 250 and meta.num_row_groups == 3
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= P.MEDIA_ROW_GROUP
    assert pq.read_table(path)[R.CLIP_ID].to_pylist() == table[R.CLIP_ID].to_pylist()


def test_shards_are_sized_by_bytes_not_only_by_rows(tmp_path, monkeypatch):
    """A 500 MB bound met by a small table: the bound lowered to ~2 MB, 250 rows of ~80 KB are 10+ shards,
    each under it, all rows kept in order; a small text table keeps the row bound, in one group."""
    monkeypatch.setattr(P, "MAX_SHARD_BYTES", 2_000_000)
    table = _clips(250)
    result = ExportResult("parquet", str(tmp_path))
    P.write_subsets(result, str(tmp_path), table, [R.CLIPS_TABLE] * table.num_rows, P.ROWS_PER_SHARD)
    files = _files(tmp_path)
    assert len(files) >= 10 and all(f.endswith(f"-of-{len(files):05d}.parquet") for f in files)
    parts = [pq.read_table(f) for f in files]
    assert all(p.nbytes <= 2_000_000 for p in parts)
    assert pa.concat_tables(parts)[R.CLIP_ID].to_pylist() == table[R.CLIP_ID].to_pylist()

    text = pa.table({R.SAMPLE_ID: [f"s{i}" for i in range(5000)], R.QUESTION: ["What is shown?"] * 5000})
    assert P.shard_rows(text) == (P.ROWS_PER_SHARD, P.ROWS_PER_SHARD)   # no binary column: rows bound it
