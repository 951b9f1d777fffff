"""The shape of ``vdata/teachers``: no import cycles (counting imports inside functions too, so a
cycle cannot hide behind a late import), the value types at the bottom, no test tool inside the
package, and no file over 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import vdata.teachers

PACKAGE_DIR = Path(vdata.teachers.__file__).resolve().parent
PREFIX = "vdata.teachers"


def _module_name(path: Path) -> str:
    return PREFIX if path.stem == "__init__" else f"{PREFIX}.{path.stem}"


def _imports(path: Path) -> set[str]:
    """Every ``vdata...`` module a file imports, at any depth of its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("vdata"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("vdata"):
            # `from vdata.teachers import config` names a module; `from vdata.teachers import X` a symbol
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if (PACKAGE_DIR / f"{a.name}.py").exists() and node.module == PREFIX else node.module)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE_DIR.glob("*.py"))}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return cycles


def test_cycle_finder_sees_a_cycle():
    # the check itself can fail: a two-module circle is reported
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_inside_teachers():
    graph = _graph()
    assert f"{PREFIX}.types" in graph and f"{PREFIX}.base" in graph
    assert _cycles(graph) == []


def test_value_types_are_the_bottom_floor():
    graph = _graph()
    # nothing of vdata but the bottom floor's dependency-free modules (vdata.errors: an error behind an error)
    bottom = {f"vdata.{name}" for name in vdata.FLOORS[-1]}
    assert graph[f"{PREFIX}.types"] <= bottom, "types.py must import nothing of vdata above its bottom floor"
    for low in ("accounting", "cache", "structured"):
        assert f"{PREFIX}.base" not in graph[f"{PREFIX}.{low}"], f"{low} imports base"
    assert {f"{PREFIX}.accounting", f"{PREFIX}.cache", f"{PREFIX}.types"} <= graph[f"{PREFIX}.base"]


def test_no_test_tools_and_no_big_files():
    assert not (PACKAGE_DIR / "fault_proxy.py").exists()
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE_DIR.glob("*.py")}
    assert {n: s for n, s in sizes.items() if s > 500} == {}
