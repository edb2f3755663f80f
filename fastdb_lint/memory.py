"""Pausing Python's cyclic garbage collector while a file's trees are alive.

Parsing a file allocates hundreds of thousands of objects that all stay reachable from
the tree until the file is done; collections in the meantime walk them again and again
and free nothing. With collection paused for the whole of a file's work, the tree is
freed by reference counting when the file is done and the next collection only sees
what outlived it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (a no-op when it is already paused)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
