"""Spreading work over processes: order, the parent-side preparation, and the frozen heap."""

from __future__ import annotations

import gc
import os
import sys

import pytest

from fastdb_lint.parallel import MIN_PARALLEL_ITEMS, parallel_map

PREPARED: list[int] = []

needs_fork = pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="workers are forked on Linux only")


def _prepare() -> None:
    PREPARED.append(os.getpid())


def _square_and_where(n: int) -> tuple[int, int, int]:
    # What each worker saw of the preparation made before it was forked.
    return n * n, os.getpid(), len(PREPARED)


@needs_fork
def test_a_pool_returns_results_in_order_and_inherits_the_preparation() -> None:
    PREPARED.clear()
    items = list(range(MIN_PARALLEL_ITEMS * 3))
    results = parallel_map(_square_and_where, items, 2, prepare=_prepare)
    assert [square for square, _, _ in results] == [n * n for n in items]
    assert PREPARED == [os.getpid()]
    assert {pid for _, pid, _ in results} - {os.getpid()}
    assert {seen for _, _, seen in results} == {1}
    assert gc.get_freeze_count() == 0


def test_a_small_batch_runs_here_without_preparing() -> None:
    PREPARED.clear()
    results = parallel_map(_square_and_where, [1, 2, 3], 2, prepare=_prepare)
    assert [(square, pid) for square, pid, _ in results] == [(1, os.getpid()), (4, os.getpid()), (9, os.getpid())]
    assert PREPARED == []


@needs_fork
def test_meanwhile_runs_here_once_the_workers_are_forked() -> None:
    PREPARED.clear()
    meanwhile: list[int] = []
    items = list(range(MIN_PARALLEL_ITEMS * 3))

    def record() -> None:
        meanwhile.append(os.getpid())
        PREPARED.append(os.getpid())

    results = parallel_map(_square_and_where, items, 2, meanwhile=record)
    assert [square for square, _, _ in results] == [n * n for n in items]
    assert meanwhile == [os.getpid()]
    # The workers were forked before it ran: none of them saw what it did.
    assert {seen for _, _, seen in results} == {0}


def test_a_small_batch_runs_nothing_meanwhile() -> None:
    called: list[bool] = []
    assert parallel_map(abs, [-1, 2], 2, meanwhile=lambda: called.append(True)) == [1, 2]
    assert called == []
