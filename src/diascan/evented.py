"""Batched changes of psygnal-evented dataclasses (Qt-free).

psygnal gives every field of an evented dataclass its own signal, emitted on each assignment
that changes the value. A restore or a reset assigns many fields at once; :func:`batch` makes
such a group of assignments emit once per field that ends up different, after the last one.

Written here because psygnal has no such thing for a whole group: ``SignalGroup.paused()``
collects the group's relay, not the per-field signals widgets connect to, and a reducer per
signal would still emit a field that was changed and then changed back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np


def same(a: Any, b: Any) -> bool:
    """Whether two field values are equal (arrays by value, odd types: never)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    try:
        return bool(a == b)
    except Exception:  # a type whose == does not give a truth value: treat as changed
        return False


def signal_fields(obj: Any) -> dict[str, Any]:
    """Current values of ``obj``'s fields that have a signal in ``obj.events``."""
    names = set(obj.events)
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name in names}


@contextmanager
def batch(*objs: Any) -> Iterator[None]:
    """Block the field signals of ``objs`` for the body, then emit ``(new, old)`` once for
    every field whose value differs from its value before the body (also when the body
    raises: listeners must see what was changed). Nested batches emit at the outermost."""
    todo = [o for o in objs if not getattr(o, "_batching", False)]
    before = [signal_fields(o) for o in todo]
    with ExitStack() as stack:
        for o in todo:
            object.__setattr__(o, "_batching", True)
            stack.enter_context(o.events.blocked())
        try:
            yield
        finally:
            for o in todo:
                object.__setattr__(o, "_batching", False)
            stack.close()  # unblock before emitting
            for o, old in zip(todo, before, strict=True):
                for name, value in old.items():
                    new = getattr(o, name)
                    if not same(new, value):
                        o.events[name].emit(new, value)


__all__ = ["batch", "same", "signal_fields"]
