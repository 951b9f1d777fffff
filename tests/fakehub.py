"""A local stand-in for the Hugging Face Hub API: just the calls `create_repo` + `upload_folder` make.

There is no local Hub server, so this is the one fake in the test suite. It speaks the real wire
protocol of huggingface_hub 2.4 (checked against its source), so the real upload code runs unchanged:

- `POST /api/repos/create`                          → `{"url": …}`, 409 when the repo exists
- `POST /api/datasets/{repo}/preupload/{revision}`  → every file `uploadMode: "regular"` (no LFS/Xet
  server needed: contents travel base64 inside the commit) and the remote git oid of files already
  there, which is how `upload_folder` skips unchanged files when an upload is resumed
- `POST /api/datasets/{repo}/commit/{revision}`     → applies the NDJSON operations, returns the commit
- `GET  /api/datasets/{repo}/revision/{revision}`   → repo info (asked when nothing changed)
- `GET  /api/datasets/{repo}`                       → repo info (`repo_info`: its visibility)
- `PUT  /api/datasets/{repo}/settings`              → `update_repo_settings` (visibility: private / public)
- `POST /api/validate-yaml`                         → checks the README's YAML header (400 with errors)

Every request must carry `Authorization: Bearer <token>`. `fail_commits` injects failures (the Nth
commit answers 400) to test resuming. Anything else is answered 404 and recorded in `unexpected`.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    repo_id: str
    private: bool
    files: dict = field(default_factory=dict)       # path -> bytes
    commits: list = field(default_factory=list)     # {oid, summary, paths}

    @property
    def head(self) -> str:
        return self.commits[-1]["oid"] if self.commits else "0" * 40


def card_yaml_errors(content: str) -> list[str]:
    """The checks the Hub makes on a dataset card's YAML header that matter here."""
    import yaml

    m = re.match(r"^---\n(.*?)\n---\n", content, re.S)
    if not m:
        return []
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as e:
        return [f"invalid YAML: {e}"]
    errors = []
    if not isinstance(meta, dict):
        return ["metadata must be a mapping"]
    names = set()
    for c in meta.get("configs") or []:
        if not isinstance(c, dict) or not c.get("config_name"):
            errors.append(f"config without config_name: {c!r}")
            continue
        if c["config_name"] in names:
            errors.append(f"duplicate config_name {c['config_name']!r}")
        names.add(c["config_name"])
        for df in c.get("data_files") or []:
            if not isinstance(df, dict) or "path" not in df:
                errors.append(f"{c['config_name']}: data_files entries need a path")
    if "license" in meta and not isinstance(meta["license"], str):
        errors.append("license must be a string")
    return errors


class FakeHub:
    def __init__(self, token: str):
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.unexpected: list[tuple[str, str]] = []
        self.unauthorized = 0
        self.validated: list[str] = []
        self.fail_commits: set[int] = set()     # 1-based commit attempt numbers that fail
        self.commit_attempts = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    # --- request handling --------------------------------------------------------------------------

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):   # keep test output clean
                pass

            def _send(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {hub.token}":
                    return True
                hub.unauthorized += 1
                self._send(401, {"error": "Invalid credentials in Authorization header"})
                return False

            def do_GET(self):
                hub.requests.append(("GET", self.path))
                if not self._authorized():
                    return
                t = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/tree/[^/?]+(\?.*)?", self.path)
                if t and t.group(1) in hub.repos:   # list_repo_files (upload_folder's delete_patterns): one page
                    files = hub.repos[t.group(1)].files
                    return self._send(200, [{"type": "file", "path": p, "size": len(files[p]),
                                             "oid": git_blob_oid(files[p])} for p in sorted(files)])
                m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)(/revision/[^/?]+)?(\?.*)?", self.path)
                if m and m.group(1) in hub.repos:
                    repo = hub.repos[m.group(1)]
                    return self._send(200, {"id": repo.repo_id, "sha": repo.head, "private": repo.private,
                                            "siblings": [{"rfilename": p} for p in sorted(repo.files)]})
                hub.unexpected.append(("GET", self.path))
                self._send(404, {"error": "not found"})

            def do_HEAD(self):
                self._unexpected()

            def do_PUT(self):
                hub.requests.append(("PUT", self.path))
                body = self._body()
                if not self._authorized():
                    return
                m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/settings", self.path)
                if not (m and m.group(1) in hub.repos):
                    hub.unexpected.append(("PUT", self.path))
                    return self._send(404, {"error": "not found"})
                settings = json.loads(body or b"{}")
                repo = hub.repos[m.group(1)]
                if "visibility" in settings:
                    repo.private = settings["visibility"] == "private"
                elif "private" in settings:
                    repo.private = bool(settings["private"])
                self._send(200, {})

            def do_DELETE(self):
                self._unexpected()

            def _unexpected(self):
                hub.requests.append((self.command, self.path))
                hub.unexpected.append((self.command, self.path))
                self._body()
                self._send(404, {"error": "not found"})

            def do_POST(self):
                hub.requests.append(("POST", self.path))
                body = self._body()
                if not self._authorized():
                    return
                if self.path == "/api/repos/create":
                    return self._create(json.loads(body))
                if self.path == "/api/validate-yaml":
                    return self._validate_yaml(json.loads(body))
                m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/(preupload|commit)/([^/?]+)(\?.*)?", self.path)
                if m and m.group(1) in hub.repos:
                    repo = hub.repos[m.group(1)]
                    if m.group(2) == "preupload":
                        return self._preupload(repo, json.loads(body))
                    return self._commit(repo, body)
                hub.unexpected.append(("POST", self.path))
                self._send(404, {"error": "not found"})

            def _create(self, payload):
                if payload.get("type") != "dataset":
                    return self._send(400, {"error": f"fake hub only hosts datasets, not {payload.get('type')}"})
                repo_id = f"{payload['organization']}/{payload['name']}"
                url = f"{hub.endpoint}/datasets/{repo_id}"
                with hub._lock:
                    if repo_id in hub.repos:
                        return self._send(409, {"error": "You already created this dataset repo", "url": url})
                    hub.repos[repo_id] = Repo(repo_id, payload.get("visibility") == "private" or bool(payload.get("private")))
                self._send(200, {"url": url, "name": repo_id, "id": repo_id})

            def _validate_yaml(self, payload):
                errors = card_yaml_errors(payload.get("content", ""))
                hub.validated.append(payload.get("content", ""))
                if errors:
                    return self._send(400, {"errors": [{"message": e} for e in errors], "warnings": []})
                self._send(200, {"errors": [], "warnings": []})

            def _preupload(self, repo: Repo, payload):
                files = []
                for f in payload["files"]:
                    old = repo.files.get(f["path"])
                    files.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                  "oid": git_blob_oid(old) if old is not None else None})
                self._send(200, {"files": files, "commitOid": repo.head})

            def _commit(self, repo: Repo, body: bytes):
                with hub._lock:
                    hub.commit_attempts += 1
                    if hub.commit_attempts in hub.fail_commits:
                        return self._send(400, {"error": f"injected failure of commit attempt {hub.commit_attempts}"})
                    lines = [json.loads(x) for x in body.splitlines() if x.strip()]
                    header = next(x["value"] for x in lines if x["key"] == "header")
                    paths = []
                    for op in lines:
                        if op["key"] == "file":
                            v = op["value"]
                            if v.get("encoding") != "base64":
                                return self._send(400, {"error": "expected base64 content"})
                            repo.files[v["path"]] = base64.b64decode(v["content"])
                            paths.append(v["path"])
                        elif op["key"] in ("deletedFile", "deletedFolder"):
                            p = op["value"]["path"]
                            for k in [k for k in repo.files if k == p or k.startswith(p.rstrip("/") + "/")]:
                                del repo.files[k]
                        elif op["key"] == "lfsFile":
                            return self._send(400, {"error": "fake hub never asked for LFS uploads"})
                    oid = hashlib.sha1(f"{repo.head}{header['summary']}{sorted(paths)}".encode()).hexdigest()
                    repo.commits.append({"oid": oid, "summary": header["summary"], "paths": paths})
                self._send(200, {"commitUrl": f"{hub.endpoint}/datasets/{repo.repo_id}/commit/{oid}",
                                 "commitOid": oid, "pullRequestUrl": None})

        return Handler

    # --- helpers for assertions --------------------------------------------------------------------

    def write_snapshot(self, repo_id: str, dest) -> None:
        """Write the repo's current files into `dest` (what `snapshot_download` would give)."""
        import os

        for path, data in self.repos[repo_id].files.items():
            target = os.path.join(str(dest), path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)


if __name__ == "__main__":   # a manual check: python tests/fakehub.py TOKEN
    import sys
    import time

    with FakeHub(sys.argv[1] if len(sys.argv) > 1 else "hf_test") as hub:
        print(hub.endpoint, flush=True)
        while True:
            time.sleep(3600)
