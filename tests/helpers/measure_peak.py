"""Peak memory of reading hostile files, each in a fresh forked child of a small process.

Usage: ``python tests/helpers/measure_peak.py [--traced] PATH [PATH ...]`` prints one JSON object per
path: ``{"path", "size", "error", "message", "rss_growth"[, "traced_peak"]}`` where
``rss_growth`` is ``ru_maxrss`` after minus before the read (bytes; in a child of its own, so an
earlier read cannot hide it) and ``traced_peak`` is the ``tracemalloc`` peak of the read
(another child). Only ``converters`` (NumPy, no JAX) is imported, so the baseline is small.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import converters  # noqa: E402


def _read(path: str) -> tuple[str, str]:
    try:
        converters.read_checkpoint(path)
    except Exception as e:  # the type is what the parent checks
        return type(e).__name__, str(e)
    return "", ""


def _in_child(fn) -> dict:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            out = json.dumps(fn()).encode()
        except BaseException as e:  # pragma: no cover - reported to the parent
            out = json.dumps({"crash": repr(e)}).encode()
        os.write(w, out)
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return {"crash": f"child ended with status {status} (signal {status & 0x7F})"}
    return json.loads(b"".join(chunks))


def measure(path: str) -> dict:
    def rss():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        err, msg = _read(path)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"error": err, "message": msg, "rss_growth": (after - before) * 1024}

    def traced():
        tracemalloc.start()
        _read(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return {"traced_peak": peak}

    size = (
        os.path.getsize(path)
        if os.path.isfile(path)
        else sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    )
    out = {"path": path, "size": size, **_in_child(rss)}
    if with_traced:
        out.update(_in_child(traced))
    return out


with_traced = False

if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--traced":
        with_traced, args = True, args[1:]
    _read(os.devnull)  # warm up lazily imported modules before any measurement
    for p in args:
        print(json.dumps(measure(p)), flush=True)
