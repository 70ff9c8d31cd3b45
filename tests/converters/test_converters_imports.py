"""`converters/` stays NumPy + standard library only, and small.

Every module under ``converters/`` is parsed (never imported): each of its imports, at module
level or inside a function, must name the standard library (`sys.stdlib_module_names`), NumPy,
or ``converters`` itself (relative imports included). No jax, no jaxedit, no torch. And no module
there is over 700 lines.
"""

from __future__ import annotations

import ast
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONVERTERS = os.path.join(ROOT, "converters")
ALLOWED_THIRD_PARTY = {"numpy"}
MAX_LINES = 700


def _modules(top: str = CONVERTERS) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        out += [os.path.join(dirpath, f) for f in filenames if f.endswith(".py")]
    return sorted(out)


def foreign_imports(path: str) -> list[str]:
    """The imports of one module that are neither stdlib, NumPy nor ``converters``.

    Args:
      path: a Python source file.

    Returns:
      ``"line N: name"`` for every offending import (module level or nested), in file order.
    """
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside converters/ by construction
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY or top == "converters":
                continue
            bad.append(f"line {node.lineno}: {name}")
    return sorted(bad, key=lambda s: int(s.split(":")[0].split()[1]))


def test_converters_modules_found():
    mods = _modules()
    rel = {os.path.relpath(m, CONVERTERS) for m in mods}
    assert "__init__.py" in rel and os.path.join("_pickle", "__init__.py") in rel
    assert len(mods) >= 10


@pytest.mark.parametrize("path", _modules(), ids=lambda p: os.path.relpath(p, ROOT))
def test_converters_imports_only_numpy_and_stdlib(path):
    assert foreign_imports(path) == [], (
        f"{os.path.relpath(path, ROOT)} imports outside the standard library, numpy and converters"
    )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: os.path.relpath(p, ROOT))
def test_converters_modules_are_small(path):
    with open(path, encoding="utf-8") as f:
        n = sum(1 for _ in f)
    assert n <= MAX_LINES, f"{os.path.relpath(path, ROOT)} has {n} lines (at most {MAX_LINES})"


def test_checker_catches_nested_and_aliased_imports(tmp_path):
    """The checker itself: function-level and dotted imports are caught, stdlib ones are not."""
    src = tmp_path / "m.py"
    src.write_text(
        "import os, json\nfrom . import sibling\nfrom numpy.lib import stride_tricks\n"
        "def f():\n    import jax.numpy as jnp\n    from jaxedit import models\n"
        "    import torch\n    return jnp\n"
    )
    assert foreign_imports(str(src)) == ["line 5: jax.numpy", "line 6: jaxedit", "line 7: torch"]
