"""Spreading per-file work over every core.

Work items are indices into a list that the worker processes inherit (``fork``), so the
project index and the sources are never pickled per task; results come back in chunks.
Where ``fork`` is unavailable the work runs in-process. Small batches run in-process
too: starting workers costs more than linting a handful of files (the pre-commit and
editor case).
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")

# Fewer items than this run in-process.
MIN_PARALLEL_ITEMS = 24

_TASK: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _run_chunk(bounds: tuple[int, int]) -> list[Any]:
    assert _TASK is not None
    func, items = _TASK
    return [func(items[i]) for i in range(*bounds)]


def parallel_map(
    func: Callable[[Any], T],
    items: Sequence[Any],
    jobs: int,
    progress: Callable[[int], None] | None = None,
    prepare: Callable[[], None] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[T]:
    """``[func(item) for item in items]``, in order, on up to ``jobs`` processes;
    ``progress`` is told how many items are done as results come in. When there are
    workers, ``prepare`` runs here once before they are forked (what it imports or
    builds, they inherit instead of each doing it again), and ``meanwhile`` runs here
    while they work, on time this process would spend waiting."""
    global _TASK
    if jobs <= 1 or len(items) < MIN_PARALLEL_ITEMS or sys.platform == "darwin":  # fork is unsafe on macOS
        return _in_process(func, items, progress)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if "fork" not in multiprocessing.get_all_start_methods():
        return _in_process(func, items, progress)
    workers = min(jobs, len(items))
    # Several chunks per worker balance uneven files; not so many that overhead shows.
    size = max(1, len(items) // (workers * 6))
    chunks = [(start, min(start + size, len(items))) for start in range(0, len(items), size)]
    if prepare is not None:
        prepare()
    _TASK = (func, items)
    # Objects that exist now are the workers' inheritance: frozen, no collection in a
    # worker walks them (or copies their pages by touching them).
    gc.freeze()
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            results: list[T] = []
            chunk_results = pool.map(_run_chunk, chunks)
            if meanwhile is not None:
                meanwhile()
            for chunk in chunk_results:
                results.extend(chunk)
                if progress is not None:
                    progress(len(results))
            return results
    finally:
        _TASK = None
        gc.unfreeze()


def _in_process(func: Callable[[Any], T], items: Sequence[Any], progress: Callable[[int], None] | None) -> list[T]:
    results: list[T] = []
    for item in items:
        results.append(func(item))
        if progress is not None:
            progress(len(results))
    return results
