"""`python -m benchmarks` after the README's install (no torch): the torch-free suites run, the
others are refused in one line that names the extra to install (issue 28)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# torch made unimportable, as after `pip install -e .`
_BLOCK = "import sys; sys.modules['torch'] = None; sys.path.insert(0, {root!r}); "


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _BLOCK.format(root=str(ROOT)) + code],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_suites_that_need_torch_say_which_extra(tmp_path):
    out = tmp_path / "r.json"
    r = _run(
        "from benchmarks.__main__ import main; "
        f"raise SystemExit(main(['run', '--suite', 'validity,forward', '--smoke', '--out', {str(out)!r}]))"
    )
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "forward" in lines[0] and "validity" not in lines[0].split("without torch")[0]
    assert "pip install" in lines[0] and ".[bench]" in lines[0]
    assert not out.exists()


def test_torch_free_suites_import_without_torch():
    r = _run(
        "from benchmarks import __main__ as m, workloads as w; "
        "assert set(m.TORCH_FREE) <= set(w.SUITES); print('ok')"
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
