"""Whether an OpenAI-compatible teacher's `base_url` is the API's root, checked once before a build.

The two commonest slips: `http://host:8000` for a vLLM or llama.cpp server whose API is under `/v1`, and
the endpoint pasted whole (`http://host:8000/v1/chat/completions`). Either way every request gets a 404,
each is retried with backoff, and a build of thousands of clips ends with each one rejected
`teacher_server_error`. One GET of `<base_url>/models` (the route every such server has) finds it: where it
is missing and a corrected root answers, the build stops before it starts and names the setting. A server
that is down, or a gateway without `/models`, is left to the build (its retries and reject rows): it may
come up while the CPU stages run. Nothing answering at all is said before the build starts, though
(`unreachable`): otherwise the first sign was a finished build with every row a `teacher_connection` reject.
"""
from __future__ import annotations

FIXABLE = (404, 405, 501)   # a route the server does not have


def _candidates(base_url: str) -> list[str]:
    base = base_url.rstrip("/")
    out = []
    for suffix in ("/chat/completions", "/completions"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            out.append(base)
    if not base.endswith("/v1"):
        out.append(base + "/v1")
    return [c for c in dict.fromkeys(out) if c != base_url.rstrip("/")]


def probe(config, timeout_s: float = 5.0) -> tuple[str | None, str | None]:
    """For an `OpenAITeacherConfig`, one GET of `<base_url>/models` (and of corrected roots where it has no
    such route): (what is wrong with `base_url`, naming the root that answers; why nothing answered at all).
    Both None where it answers or nothing can be told."""
    import httpx

    from .openai_compat import api_key_for

    headers = {k: v.get_secret_value() for k, v in config.headers.items()}
    key = api_key_for(config, config.base_url)   # as the teacher's requests will send it
    if key:
        headers["Authorization"] = f"Bearer {key}"
    failure: list[str] = []

    def status(root: str) -> int | None:
        try:
            return httpx.get(root + "/models", headers=headers, timeout=timeout_s).status_code
        except httpx.HTTPError as e:
            failure.append(type(e).__name__)
            return None

    first = status(config.base_url)
    if first is None:
        return None, f"nothing answers at {config.base_url} now ({failure[0]})"
    if first not in FIXABLE:
        return None, None
    for root in _candidates(config.base_url):
        if status(root) == 200:
            return (f"{config.base_url}/models answers HTTP {first}, {root}/models answers: the API's root is "
                    f"{root} (set base_url: {root})"), None
    return None, None


__all__ = ["probe"]
