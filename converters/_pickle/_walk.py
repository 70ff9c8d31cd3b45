"""After unpickling: an iterative walk that materializes tensors and bounds depth / cycles."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CorruptCheckpointError
from ._limits import _Ctx, _describe
from ._standins import PersistentObject, _GuardedArray, _PickledDtype, _Sealed, _TensorRef


def _children(obj: Any):
    """(keys, getter, setter) for a container the walk descends into, else None."""
    if isinstance(obj, dict):
        return list(obj.keys()), obj.__getitem__, obj.__setitem__
    if isinstance(obj, list):
        return list(range(len(obj))), obj.__getitem__, obj.__setitem__
    if isinstance(obj, tuple):
        return list(range(len(obj))), obj.__getitem__, None
    if isinstance(obj, (_Sealed, _PickledDtype, type)) and not isinstance(obj, PersistentObject):
        return None
    if callable(obj):
        return None
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict) and not isinstance(obj, (np.ndarray, np.generic, np.dtype)):
        return list(d.keys()), d.__getitem__, d.__setitem__
    return None


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key[:80]
    return _describe(key, 40)


def _materialize(root: Any, ctx: _Ctx) -> Any:
    """Replace every tensor reference below ``root`` by an array; refuse depth and cycles.

    Iterative (no Python recursion), visits each object once (shared objects stay shared).
    """
    max_depth = ctx.limits.max_depth
    done: dict[int, Any] = {}
    keep: list = []  # originals stay alive so that their ids are not reused during the walk
    on_path: set[int] = set()

    def leaf(obj: Any, path: str):
        if isinstance(obj, _TensorRef):
            return True, obj.materialize(ctx, path or "(top level)")
        if isinstance(obj, _GuardedArray):
            return True, obj.view(np.ndarray)
        if isinstance(obj, _PickledDtype):
            return True, obj.dtype
        return False, obj

    is_leaf, value = leaf(root, "")
    if is_leaf:
        return value
    kids = _children(root)
    if kids is None:
        return root
    stack = [[root, "", 0, kids, 0, [] if isinstance(root, tuple) else None]]
    on_path.add(id(root))
    result = root
    while stack:
        frame = stack[-1]
        obj, path, depth, (keys, get, put), i, acc = frame
        if i < len(keys):
            frame[4] = i + 1
            key = keys[i]
            child = get(key)
            cpath = f"{path}/{_key_text(key)}" if path else _key_text(key)
            cid = id(child)
            if cid in done:
                value = done[cid]
            else:
                is_leaf, value = leaf(child, cpath)
                if is_leaf:
                    done[cid] = value
                    keep.append(child)
                else:
                    ck = _children(child)
                    if ck is not None:
                        if cid in on_path:
                            raise CorruptCheckpointError(
                                f"{ctx.source}: the object at {cpath[-160:]} contains itself "
                                "(a reference cycle); checkpoints hold trees of data"
                            )
                        if depth + 1 > max_depth:
                            where = (
                                cpath if len(cpath) < 160 else (f"{cpath[:60]}/.../{cpath[-60:]}")
                            )
                            raise CorruptCheckpointError(
                                f"{ctx.source}: containers nested more than {max_depth} deep "
                                f"at {where}"
                            )
                        on_path.add(cid)
                        stack.append(
                            [
                                child,
                                cpath,
                                depth + 1,
                                ck,
                                0,
                                [] if isinstance(child, tuple) else None,
                            ]
                        )
                        continue
            if acc is not None:
                acc.append(value)
            elif value is not child:
                put(key, value)
            continue
        stack.pop()
        on_path.discard(id(obj))
        value = tuple(acc) if acc is not None else obj
        done[id(obj)] = value
        keep.append(obj)
        if stack:
            parent = stack[-1]
            pkeys, pget, pput = parent[3]
            pkey = pkeys[parent[4] - 1]
            if parent[5] is not None:
                parent[5].append(value)
            elif value is not obj:
                pput(pkey, value)
        else:
            result = value
    return result
