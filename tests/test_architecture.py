"""The package's shape: no import cycles, no module over 700 lines, the CLI's commands below its
entry module, benchmarks on the public API only.

The import graph is read from the source (``ast``), so it counts imports made inside functions
and modules named by strings (``importlib.import_module("jaxedit.x")`` or a tuple of names), which
a runtime check would miss.
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jaxedit", "converters")
MAX_LINES = 700


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            rel = p.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = p
    return mods


def _resolve(module: str, is_pkg: bool, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package modules it imports (anywhere in its body, or names in a string)."""
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        is_pkg = p.name == "__init__.py"
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(m, is_pkg, node.level, node.module)
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else [base, *subs]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                v = node.value
                if v in mods:
                    targets = [v]
                elif v.startswith(".") and _resolve(m, is_pkg, 1, v.lstrip(".")) in mods:
                    targets = [_resolve(m, is_pkg, 1, v.lstrip("."))]
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                # a submodule always runs after its parents: an edge up to one is no cycle
                if t and t != m and not m.startswith(t + "."):
                    edges[m].add(t)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_planted_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = cycles(import_graph(_modules()))
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_commands_never_import_the_cli_entry_module():
    edges = import_graph(_modules())
    bad = sorted(
        m for m, ts in edges.items() if m.startswith("jaxedit.cli.") and "jaxedit.cli" in ts
    )
    assert bad == []


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_module_over_700_lines(pkg):
    long = {
        m: n
        for m, p in _modules().items()
        if m.split(".")[0] == pkg and (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_converters_import_only_numpy_and_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"numpy", "converters"}
    bad = []
    for m, p in _modules().items():
        if not m.startswith("converters"):
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            bad += [(m, n) for n in names if n.split(".")[0] not in allowed]
    assert bad == []


def test_benchmarks_use_only_the_public_api():
    """No benchmark imports a private jaxedit module or name (``_x``), nor a module outside the
    public namespaces."""
    bad = []
    for p in sorted((ROOT / "benchmarks").rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jaxedit"):
                mod = node.module or ""
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                mod, names = "", [a.name for a in node.names if a.name.startswith("jaxedit")]
            else:
                continue
            for n in [mod, *names] if mod else names:
                if any(part.startswith("_") for part in n.split(".")):
                    bad.append((p.name, node.lineno, n))
    assert bad == []
