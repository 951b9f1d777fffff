"""The shape of the house, checked on every import in vdata/ (parsed with `ast`, function-level imports
included): the floors written once in `vdata.FLOORS`, no import cycles, no file over 500 lines, stages
that never import each other, an lmms-eval helper that ships on its own, and no function or test
defined twice in one module of vdata/, tests/ or bench/ (the second silently replaces the first).

Each test states one rule and, when it fails, lists every offender with its file and line, so a
failure says exactly what to move. Rules:
- DOWNWARDS: a module imports units on lower floors only (a "unit" is a package under vdata/ or a
  top-level module such as vdata/hub.py).
- NO SIDEWAYS: units on the same floor do not import each other (stages, exporters and haystack are
  peers); inside one unit any module may import any other, cycles aside.
- Imports under `if TYPE_CHECKING:` are annotations only (never run), so they count for no rule.
- The package root `vdata/__init__.py` is the API front door: it may name anything (lazily), and no
  module inside vdata/ imports it (`from vdata import some_module` is an import of that module).
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import vdata

ROOT = Path(vdata.__file__).resolve().parent
MAX_LINES = 500
FLOOR_OF = {unit: len(vdata.FLOORS) - i for i, units in enumerate(vdata.FLOORS) for unit in units}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported vdata module, line) for every import statement in the file, at any depth."""
    is_package = path.name == "__init__.py"
    out = []
    tree = ast.parse(path.read_text(), str(path))
    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                 for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "vdata"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "vdata":
                continue
            for alias in node.names:   # `from pkg import submodule` imports the submodule
                sub = f"{target}.{alias.name}"
                out.append((sub if sub in FILES else target, node.lineno))
    return out


GRAPH = {m: _imports(m, p) for m, p in FILES.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _where(module: str, line: int) -> str:
    return f"{FILES[module].relative_to(ROOT.parent)}:{line}"


def test_every_unit_has_a_floor():
    units = {_unit(m) for m in FILES} - {""}
    assert not units - set(FLOOR_OF), f"units missing from vdata.FLOORS: {sorted(units - set(FLOOR_OF))}"
    assert not set(FLOOR_OF) - units, f"vdata.FLOORS names units that do not exist: {sorted(set(FLOOR_OF) - units)}"


def test_imports_go_downwards():
    upwards, sideways, root = [], [], []
    for module, imports in GRAPH.items():
        src = _unit(module)
        for target, line in imports:
            dst = _unit(target)
            if src == "" or src == dst:
                continue            # the API front door may name anything; inside a unit is free
            if dst == "":
                root.append(f"{_where(module, line)}: {module} imports the package root `vdata`")
            elif FLOOR_OF[dst] > FLOOR_OF[src]:
                upwards.append(f"{_where(module, line)}: {module} (floor {FLOOR_OF[src]}) imports {target} "
                               f"(floor {FLOOR_OF[dst]})")
            elif FLOOR_OF[dst] == FLOOR_OF[src]:
                sideways.append(f"{_where(module, line)}: {module} imports {target}, a peer on floor {FLOOR_OF[src]}")
    problems = upwards + sideways + root
    assert not problems, "imports against the floors (vdata.FLOORS):\n  " + "\n  ".join(problems)


def test_stages_never_import_each_other():
    def stage_of(module: str) -> str | None:
        parts = module.split(".")
        return parts[2] if len(parts) > 2 and parts[1] == "stages" and parts[2] != "base" else None

    offenders = [f"{_where(m, line)}: {m} imports {t}" for m, imports in GRAPH.items() if stage_of(m)
                 for t, line in imports if stage_of(t) and stage_of(t) != stage_of(m)]
    assert not offenders, ("stages import each other (what two stages share belongs in stages/base.py, media/ "
                           "or teachers/):\n  " + "\n  ".join(offenders))


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a set of modules in a circle."""
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in GRAPH.get(v, ()):
            if w not in FILES:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in FILES:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    lines = []
    for component in _cycles():
        members = set(component)
        edges = {f"{_where(m, line)}: {m} -> {t}" for m in component for t, line in GRAPH[m] if t in members}
        lines.append("circle " + " <-> ".join(component) + ":\n    " + "\n    ".join(sorted(edges)))
    assert not lines, "import cycles between modules (function-level imports count too):\n  " + "\n  ".join(lines)


def test_no_file_over_500_lines():
    sizes = {m: len(p.read_text().splitlines()) for m, p in FILES.items()}
    big = [f"{FILES[m].relative_to(ROOT.parent)}: {n} lines" for m, n in sorted(sizes.items(), key=lambda kv: -kv[1])
           if n > MAX_LINES]
    assert not big, f"files in vdata/ over {MAX_LINES} lines (split them by responsibility):\n  " + "\n  ".join(big)


def test_lmms_task_utils_ship_alone():
    """It is copied as utils.py into task folders that run without vdata: standard library only."""
    path = ROOT / "lmms_task_utils.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module.split(".")[0])
    assert {"json", "re", "zipfile"} <= names, f"the parser found only {sorted(names)}"
    outside = sorted(n for n in names if n not in sys.stdlib_module_names and n != "__future__")
    assert not outside, f"vdata/lmms_task_utils.py imports non-stdlib modules {outside}"


def test_the_checker_sees_what_it_should():
    """The rules above are only worth something if the parser finds the imports: spot-check it."""
    runner = {t for t, _ in GRAPH["vdata.pipelines.runner"]}
    assert {"vdata.schemas.records", "vdata.schemas.config", "vdata.stages"} <= runner
    # a function-level import (vdata/stages/base.py imports the teachers inside Stage.teacher)
    assert "vdata.teachers" in {t for t, _ in GRAPH["vdata.stages.base"]}
    # relative imports resolve to modules: exporters/__init__.py imports .base
    assert "vdata.exporters.base" in {t for t, _ in GRAPH["vdata.exporters"]}
    edges = defaultdict(set)
    for m, imports in GRAPH.items():
        for t, _ in imports:
            edges[_unit(m)].add(_unit(t))
    assert "stages" in edges["pipelines"] and "schemas" in edges["stages"]


def _defined_twice(source: str) -> list[tuple[str, int]]:
    """(name, line) of each function or class defined again in the same module or class body, which
    silently replaces the first (pytest then never runs a test shadowed that way). Overloads and
    property setters are redefinitions by design."""
    def redefinable(node) -> bool:
        return any((isinstance(d, ast.Name) and d.id == "overload") or (isinstance(d, ast.Attribute) and d.attr in
                   ("overload", "setter", "deleter")) for d in getattr(node, "decorator_list", []))

    out = []
    tree = ast.parse(source)
    bodies = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))]
    for body in bodies:
        seen = set()
        for node in body.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not redefinable(node):
                if node.name in seen:
                    out.append((node.name, node.lineno))
                seen.add(node.name)
    return out


def test_no_function_or_test_defined_twice_in_one_module():
    assert _defined_twice("def test_a():\n    pass\n\n\ndef test_a():\n    pass\n") == [("test_a", 5)]
    files = [p for folder in ("vdata", "tests", "bench") for p in sorted((ROOT.parent / folder).rglob("*.py"))]
    twice = [f"{p.relative_to(ROOT.parent)}:{line}: {name}" for p in files for name, line in _defined_twice(p.read_text())]
    assert not twice, "defined twice in one module (the second replaces the first):\n  " + "\n  ".join(twice)
