"""Spreading per-file work over every core.

Work items are indices into a list that the worker processes inherit (``fork``), so the
project index and the sources are never pickled per task; results come back in chunks.
Given each item's cost, the costliest items go first and the chunks shrink towards the
end, so that no worker is left with a long chunk while the others wait.
Where ``fork`` is unavailable the work runs in-process. Small batches run in-process
too: starting workers costs more than linting a handful of files (the pre-commit and
editor case).
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any, Callable, Sequence, TypeVar

from fastdb_lint.memory import gc_paused

T = TypeVar("T")

# Fewer items than this run in-process.
MIN_PARALLEL_ITEMS = 24

_TASK: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# Chunks per worker for items without costs (with costs, the smallest chunk is half of
# such a share): enough to even out uneven items, few enough that sending tasks and
# results back stays cheap.
CHUNKS_PER_WORKER = 8


def _run_chunk(indices: list[int]) -> list[Any]:
    assert _TASK is not None
    func, items = _TASK
    return [func(items[i]) for i in indices]


def chunked(costs: Sequence[int] | None, count: int, workers: int) -> list[list[int]]:
    """Indices ``0 .. count - 1`` in chunks for ``workers`` processes. Without costs, in
    order and of equal length. With them, costliest first, in chunks that shrink as the
    work left does (each holds about a ``2 * workers``-th of it, an item costlier than
    that is a chunk of its own): the last chunks handed out are short, so the workers
    finish together."""
    if costs is None:
        size = max(1, count // (workers * CHUNKS_PER_WORKER))
        return [list(range(start, min(start + size, count))) for start in range(0, count, size)]
    weights = [max(1, cost) for cost in costs]
    order = sorted(range(count), key=lambda i: weights[i], reverse=True)
    left = sum(weights)
    smallest = max(1, left // (workers * CHUNKS_PER_WORKER * 2))
    chunks: list[list[int]] = []
    current: list[int] = []
    held = 0
    for index in order:
        current.append(index)
        held += weights[index]
        if held >= max(smallest, left // (2 * workers)):
            chunks.append(current)
            left -= held
            current, held = [], 0
    if current:
        chunks.append(current)
    return chunks


def parallel_map(
    func: Callable[[Any], T],
    items: Sequence[Any],
    jobs: int,
    progress: Callable[[int], None] | None = None,
    prepare: Callable[[], None] | None = None,
    meanwhile: Callable[[], None] | None = None,
    costs: Sequence[int] | None = None,
) -> list[T]:
    """``[func(item) for item in items]``, in order, on up to ``jobs`` processes;
    ``progress`` is told how many items are done as results come in; ``costs`` (one per
    item, in any unit) say which items take longest. When there are
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
    chunks = chunked(costs, len(items), workers)
    if prepare is not None:
        prepare()
    _TASK = (func, items)
    # Objects that exist now are the workers' inheritance: frozen, no collection in a
    # worker walks them (or copies their pages by touching them).
    gc.freeze()
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            results: list[Any] = [None] * len(items)
            done = 0
            # Submitting forks every worker (with the collector as it was).
            chunk_results = pool.map(_run_chunk, chunks)
            # From here on this process receives results, which live as long as the
            # run: collections would walk them (and what ``meanwhile`` imports) again
            # and again, and free nothing. They join the frozen objects instead.
            with gc_paused():
                if meanwhile is not None:
                    meanwhile()
                for indices, chunk in zip(chunks, chunk_results):
                    for index, value in zip(indices, chunk):
                        results[index] = value
                    done += len(chunk)
                    if progress is not None:
                        progress(done)
                gc.freeze()
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
