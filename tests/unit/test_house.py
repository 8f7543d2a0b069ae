"""The rules of the house, read from the code (``ast`` only, nothing is imported to find them).

* no import circles (every import counts: top level, in functions, under TYPE_CHECKING);
* a connector package (``connectors/postgres/``...) is entered through its ``__init__`` only:
  nobody outside it imports one of its modules or a ``_private`` name, and none of its own
  modules imports its ``__init__``;
* no ``_private`` name is taken from another package anywhere in ``engine/`` or ``connectors/``;
* connectors never import the engine;
* the error hierarchy: every error class says when it is raised and is in one family.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Where imports are read from, and the packages whose modules form the graph.
READ = ("engine", "connectors", "tests", "benchmarks")
GRAPH = ("engine", "connectors")

@dataclass(frozen=True)
class Import:
    importer: str      # module name
    target: str        # module imported (resolved to a project module)
    names: tuple[str, ...]  # names taken from it (empty for ``import x`` / submodules)
    line: int


def _modules() -> dict[str, Path]:
    found = {}
    for top in READ:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "node_modules" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(name: str) -> str | None:
    parts = name.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts = parts[:-1]
    return ".".join(parts) if parts else None


def _imports(module: str) -> list[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name)
                if target:
                    found.append(Import(module, target, (), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not _is_package(module):
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names = []
            for alias in node.names:
                if f"{source}.{alias.name}" in MODULES:  # ``from pkg import submodule``
                    found.append(Import(module, f"{source}.{alias.name}", (), node.lineno))
                else:
                    names.append(alias.name)
            target = _resolve(source)
            if names and target:
                found.append(Import(module, target, tuple(names), node.lineno))
    return found


IMPORTS = [imp for module in MODULES for imp in _imports(module)]


def _package_of(module: str) -> str:
    return module if _is_package(module) else module.rpartition(".")[0]


def _connector_package(module: str) -> str | None:
    """``connectors.postgres`` for ``connectors.postgres._sink``; None outside one."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "connectors" and _is_package(".".join(parts[:2])):
        return ".".join(parts[:2])
    return None


def _circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(frozenset(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in IMPORTS:
        if imp.importer.split(".")[0] not in GRAPH or imp.target == imp.importer:
            continue
        # a package's __init__ importing its own modules counts too: importing a package runs
        # them, so a circle through a front door is a circle
        graph[imp.importer].add(imp.target)
    circles = [sorted(c) for c in _circles(graph)]
    assert not circles, f"import circles: {circles}"


def test_connector_packages_are_entered_by_their_front_door() -> None:
    wrong = []
    for imp in IMPORTS:
        package = _connector_package(imp.target)
        if package is None:
            continue
        inside = _connector_package(imp.importer) == package
        where = f"{imp.importer} (line {imp.line})"
        if inside:
            if imp.target == package and not _is_package(imp.importer):
                wrong.append(f"{where} imports its own package's __init__")
            continue
        if imp.target != package:
            wrong.append(f"{where} imports {imp.target}, inside {package}")
        hidden = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
        if hidden:
            wrong.append(f"{where} takes {hidden} from {package}")
    assert not wrong, "\n".join(wrong)


def test_no_private_name_is_taken_from_another_package() -> None:
    wrong = [f"{imp.importer} (line {imp.line}) takes {n} from {imp.target}"
             for imp in IMPORTS
             if imp.importer.split(".")[0] in GRAPH
             and _package_of(imp.importer) != _package_of(imp.target)
             for n in imp.names if n.startswith("_") and not n.startswith("__")]
    assert not wrong, "\n".join(wrong)


def test_connectors_never_import_the_engine() -> None:
    wrong = [f"{imp.importer} (line {imp.line}) imports {imp.target}" for imp in IMPORTS
             if imp.importer.startswith("connectors") and imp.target.startswith("engine")]
    assert not wrong, "\n".join(wrong)


def test_the_connectors_top_level_holds_only_the_contract_and_the_packages() -> None:
    modules = sorted(p.stem for p in (ROOT / "connectors").glob("*.py"))
    assert modules == ["__init__", "base", "copy", "errors", "timeouts", "tracing", "urls"]
    packages = sorted(p.name for p in (ROOT / "connectors").iterdir()
                      if (p / "__init__.py").is_file())
    assert packages == ["aws", "dynamodb", "formats", "local", "mysql", "postgres", "s3",
                        "sql", "testing"]
    assert (ROOT / "connectors" / "py.typed").is_file()


def test_every_error_says_when_it_is_raised_and_has_one_family() -> None:
    import connectors.errors as connector_errors
    import engine.errors as engine_errors
    from connectors.errors import ConnectorError, HeadraceError, TerminalError, TransientError

    classes = {cls for module in (connector_errors, engine_errors)
               for _, cls in inspect.getmembers(module, inspect.isclass)
               if issubclass(cls, HeadraceError)}
    assert len(classes) > 20
    for cls in classes:
        assert cls.__doc__ and "__doc__" in vars(cls), f"{cls.__name__} has no docstring"
        families = [f for f in (TransientError, TerminalError) if issubclass(cls, f)]
        if cls in (HeadraceError, ConnectorError, engine_errors.RunError):
            assert not families  # the base, the connectors' base, and the one decided per raise
            continue
        assert len(families) == 1, f"{cls.__name__} is in {families}"
        assert cls.transient is (families[0] is TransientError)


def test_the_testing_package_imports_without_its_extra() -> None:
    """h11 is the ``testing`` extra: without it the kit and the TCP proxy still import, and an
    HTTP fault proxy says what to install."""
    script = """
import sys
sys.modules["h11"] = None  # as if it were not installed
import anyio
import connectors.testing as kit
assert kit.FaultProxy and kit.check_round_trip
async def main():
    try:
        async with kit.s3_fault_proxy("http://127.0.0.1:9"):
            pass
    except ModuleNotFoundError as exc:
        print(exc)
anyio.run(main)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install 'headrace[testing]'" in done.stdout


def test_no_connector_end_is_probed_by_name() -> None:
    """What a source or sink can do is declared on protocols (connectors.base), checked with
    isinstance, never probed with getattr/hasattr."""
    ends = {"source", "sink", "end", "self"}
    probes = []
    for path in sorted((ROOT / "connectors").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("getattr", "hasattr") and node.args \
                    and isinstance(node.args[0], ast.Name) and node.args[0].id in ends:
                probes.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not probes, probes
