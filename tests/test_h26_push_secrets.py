"""h26 F17 / F16: what `vdata push` publishes of the build's strings, and the report's source names.

F17: a URL input with a credential in its query (`?token=`, a presigned S3 URL) was masked in the manifest
and the card but pushed verbatim in the public Parquet (`source_uri`, `path`) and printed in the report's
sample headers. F16: every extra manifest column travels in `source_meta`, and an `hf_` token, a presigned
URL and an e-mail address were published without a word. Now every staged file has its credential-shaped
strings masked as `vdata.teachers.redaction.redact` masks text, push says so and names the source_meta
keys it publishes (and those holding e-mail addresses), and `source_meta_keys` chooses them.
Real huggingface_hub against the local stand-in, tests/fakehub.py.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakehub import FakeHub
from test_hub import _media, online, token  # noqa: F401  (fixtures)

from vdata.exporters.demo_build import write_demo_build
from vdata.hub import push
from vdata.hub.scrub import scrub_folder
from vdata.schemas import records as R

QUERY_SECRET = "URLQUERYSECRET77"
SIGNATURE = "deadbeefcafebabe0123"
HF_SECRET = "hf_abcdefghijklmnopqrstuvwxyz123456"
EMAIL = "alice@corp.example"
SECRETS = (QUERY_SECRET, SIGNATURE, HF_SECRET)


def _url(stem: str) -> str:
    return f"https://cdn.example.com/media/{stem}.mp4?token={QUERY_SECRET}&v=2"


def _meta(stem: str) -> str:
    return json.dumps({"stem": stem, "uploader_email": EMAIL, "hf_token": HF_SECRET,
                       "internal_url": f"https://b.s3.amazonaws.com/raw/{stem}.mp4?X-Amz-Credential=AKIAXXXX"
                                       f"&X-Amz-Signature={SIGNATURE}"})


def _set(table: pa.Table, col: str, values: list) -> pa.Table:
    at = table.schema.get_field_index(col)
    return table.set_column(at, table.schema.field(at), pa.array(values, table.schema.field(at).type))


@pytest.fixture(scope="module")
def url_build(tmp_path_factory) -> str:
    """The demo sample build as a build of tokenised URL inputs with extra manifest columns: every row's
    `source_uri` a `?token=` URL, its source_meta holding an e-mail, an `hf_` token and a presigned URL."""
    out = write_demo_build(str(tmp_path_factory.mktemp("urlbuild")), media_dir=_media(tmp_path_factory))
    stem_of = {}
    for part in Path(out, "samples").glob("*.parquet"):
        table = pq.read_table(part, columns=[R.VIDEO_ID, R.SOURCE_META])
        stem_of.update({v: json.loads(m)["stem"] for v, m in zip(*(table[c].to_pylist() for c in table.column_names))})
    for folder in ("samples", R.CLIPS_TABLE):
        for part in Path(out, folder).glob("*.parquet"):
            table = pq.read_table(part)
            stems = [stem_of[v] for v in table[R.VIDEO_ID].to_pylist()]
            for col, value in ((R.SOURCE_URI, _url), (R.SOURCE_META, _meta)):
                if col in table.column_names:
                    table = _set(table, col, [value(s) for s in stems])
            pq.write_table(table, part)
    return out


def _published(files: dict) -> tuple[str, list[dict]]:
    """Every string the repo holds, as text (binary columns left out), and the rows of its Parquet files."""
    texts, rows = [], []
    for path, data in files.items():
        if path.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(data))
            keep = [f.name for f in table.schema if "binary" not in str(f.type)]
            part = table.select(keep).to_pylist()
            rows += [dict(r, _file=path) for r in part]
            texts.append(json.dumps(part, default=str))
        elif not path.endswith((".mp4", ".zip")):
            texts.append(data.decode("utf-8", "replace"))
    return "\n".join(texts), rows


def test_push_masks_url_credentials_and_tokens_in_every_published_string(url_build, token, tmp_path, online):  # noqa: F811
    said = []
    with FakeHub(token) as hub:
        push(url_build, "me/urls", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "s"), log=said.append)
        files = dict(hub.repos["me/urls"].files)
    text, rows = _published(files)
    for secret in SECRETS:
        assert secret not in text, secret
    assert str(Path(url_build).parent) not in text   # nor a folder of this machine: `clip_path` is the build's
    clip_paths = {r.get(R.CLIP_PATH) for r in rows if r["_file"].startswith("data/mcq/")} - {None}
    assert clip_paths and all(p.startswith(f"{R.CLIPS_TABLE}/") for p in clip_paths)
    data = [r for r in rows if r["_file"].startswith("data/") and r.get(R.SOURCE_URI)]
    assert data and {r["_file"].split("/")[1] for r in data} >= {"mcq", R.CLIPS_TABLE}
    for r in data:   # the URL still names its file and its other parameters; only the credential is masked
        assert r[R.SOURCE_URI].startswith("https://cdn.example.com/media/") and "token=<redacted>&v=2" in r[R.SOURCE_URI]
        if R.SOURCE_META not in r:   # the clips config: frames and the clip's media columns
            continue
        meta = json.loads(r[R.SOURCE_META])
        assert meta["hf_token"] == "<redacted>" and "X-Amz-Signature=<redacted>" in meta["internal_url"]
        assert meta["stem"] and meta["uploader_email"] == EMAIL   # personal data is named, not guessed at
    masked = [m for m in said if m.startswith("masked credential-shaped text in ")]
    assert len(masked) == 1 and "source_uri" in masked[0] and "source_meta" in masked[0]
    keys = [m for m in said if m.startswith("source_meta (the input rows' extra columns) published with the keys: ")]
    assert keys and "hf_token, internal_url, stem, uploader_email" in keys[0]
    assert any("uploader_email hold e-mail addresses" in m for m in said)


def test_source_meta_keys_chooses_what_is_published(url_build, token, tmp_path, online):  # noqa: F811
    said = []
    with FakeHub(token) as hub:
        push(url_build, "me/meta", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "s"),
             log=said.append, source_meta_keys=["stem"])
        files = dict(hub.repos["me/meta"].files)
    text, rows = _published(files)
    assert EMAIL not in text and "internal_url" not in text and "hf_token" not in text
    metas = [json.loads(r[R.SOURCE_META]) for r in rows if r.get(R.SOURCE_META)]
    assert metas and all(set(m) == {"stem"} for m in metas)
    (line,) = [m for m in said if m.startswith("source_meta (the input rows' extra columns)")]
    assert "keys: stem; left out: hf_token, internal_url, uploader_email" in line
    assert not any("e-mail" in m for m in said)


def test_scrub_masks_nested_strings_and_json_files_and_leaves_clean_files_alone(tmp_path):
    """Every string column (a URL `path`, a nested `options` / `evidence` text) and every JSON record file;
    a file with nothing to mask keeps its bytes (a re-push uploads nothing new)."""
    url = f"http://user:pa55word99@host/v.mp4?sig={SIGNATURE}"
    table = pa.table({R.PATH: [url, "a.mp4"], R.OPTIONS: [[f"key {HF_SECRET}", "b"], ["c", "d"]],
                      R.EVIDENCE: [{"captions": [f"see ?token={QUERY_SECRET}"]}, {"captions": ["plain"]}],
                      R.FRAMES: [[{R.FRAME_TIMESTAMP_S: 0.5, R.FRAME_JPEG: b"\xff\xd8jpeg"}], []]})
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=1)
    clean = tmp_path / "clean.parquet"
    pq.write_table(pa.table({R.PATH: ["a.mp4"]}), clean)
    before = clean.read_bytes()
    (tmp_path / "rec.json").write_text(json.dumps([{"video": "v.mp4", "text": f'say "hi" {HF_SECRET}'}], indent=1))
    (tmp_path / "task.yaml").write_text(f"dataset_path: x\nurl: https://h/x?api_key={QUERY_SECRET}\n")

    result = scrub_folder(str(tmp_path), secrets=["some-given-secret"])
    out = pq.read_table(tmp_path / "data.parquet")
    assert pq.ParquetFile(tmp_path / "data.parquet").metadata.num_row_groups == 2   # its row groups kept
    assert out[R.PATH].to_pylist()[0] == "http://user:<redacted>@host/v.mp4?sig=<redacted>"
    assert out[R.OPTIONS].to_pylist()[0] == ["key <redacted>", "b"]
    assert out[R.EVIDENCE].to_pylist()[0]["captions"] == ["see ?token=<redacted>"]
    assert out[R.FRAMES].to_pylist()[0][0][R.FRAME_JPEG] == b"\xff\xd8jpeg"
    assert json.loads((tmp_path / "rec.json").read_text()) == [{"video": "v.mp4", "text": 'say "hi" <redacted>'}]
    assert QUERY_SECRET not in (tmp_path / "task.yaml").read_text()
    assert clean.read_bytes() == before
    assert result.masked == {R.PATH: 1, R.OPTIONS: 1, R.EVIDENCE: 1, "rec.json": 1, "task.yaml": 1}


def test_report_sample_headers_name_a_url_source_without_its_query(tmp_path):
    from report_outputs import make_sample_output

    from vdata.pipelines.report import write_report

    out = tmp_path / "out"
    make_sample_output(out)
    for part in (out / "samples").glob("*.parquet"):
        table = pq.read_table(part)
        uris = [f"https://cdn.example.com/{Path(u).name}?token={QUERY_SECRET}" for u in table[R.SOURCE_URI].to_pylist()]
        pq.write_table(_set(table, R.SOURCE_URI, uris), part)
    html_path, md_path = write_report(out)
    html, md = Path(html_path).read_text(), Path(md_path).read_text()
    viewer = html.split('<section id="samples">')[1].split("</section>")[0]
    assert "video_0.mp4" in viewer and "video_0.mp4" in md
    assert QUERY_SECRET not in html and QUERY_SECRET not in md


def test_source_name_keeps_a_page_query_and_masks_credentials():
    from vdata.pipelines.report_samples import source_name

    assert source_name(f"http://127.0.0.1:1/narrated.mp4?token={QUERY_SECRET}") == "narrated.mp4"
    assert source_name("https://www.youtube.com/watch?v=abc123") == "watch?v=abc123"
    assert source_name(f"https://x.example/watch?v=a&token={QUERY_SECRET}") == "watch?v=a&token=<redacted>"
    assert source_name("/data/day2/a.mp4") == "a.mp4" and source_name(None) == ""


def test_the_push_command_publishes_only_the_source_meta_keys_named(url_build, token, tmp_path, monkeypatch,  # noqa: F811
                                                                   online):  # noqa: F811
    """`vdata push --source-meta-key KEY` (repeatable), the command's form of `push(source_meta_keys=...)`."""
    from test_hub_safety import _cli

    monkeypatch.setenv("HF_TOKEN", token)
    with FakeHub(token) as hub:
        res = _cli([url_build, "--repo", "me/meta-cli", "--endpoint", hub.endpoint, "--staging", str(tmp_path / "s"),
                    "--source-meta-key", "stem"])
        assert res.exit_code == 0, res.output
        files = dict(hub.repos["me/meta-cli"].files)
    text, rows = _published(files)
    assert EMAIL not in text and "internal_url" not in text
    metas = [json.loads(r[R.SOURCE_META]) for r in rows if r.get(R.SOURCE_META)]
    assert metas and all(set(m) == {"stem"} for m in metas)
