"""Spreading work over processes: order, chunks by cost, the parent-side preparation, and
the frozen heap."""

from __future__ import annotations

import gc
import os
import sys

import pytest

from fastdb_lint.parallel import MIN_PARALLEL_ITEMS, chunked, parallel_map

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


def test_chunks_hold_every_item_once_costliest_first_and_shrink() -> None:
    costs = [(n * 7919) % 1000 + 1 for n in range(500)]
    chunks = chunked(costs, len(costs), 2)
    flat = [index for chunk in chunks for index in chunk]
    assert sorted(flat) == list(range(len(costs)))
    assert [costs[i] for i in flat] == sorted(costs, reverse=True)
    totals = [sum(costs[i] for i in chunk) for chunk in chunks]
    # Each chunk holds about a quarter of what is left for two workers: the first is
    # the largest, the last ones are a small part of the whole.
    assert totals[0] >= sum(costs) // 4
    assert max(totals[-4:]) <= sum(costs) // 16
    assert len(chunks) < len(costs) // 4


def test_an_item_costlier_than_a_share_is_a_chunk_of_its_own() -> None:
    costs = [1] * 40 + [10_000]
    chunks = chunked(costs, len(costs), 2)
    assert chunks[0] == [40]
    assert sorted(i for chunk in chunks[1:] for i in chunk) == list(range(40))


def test_without_costs_chunks_keep_the_order() -> None:
    chunks = chunked(None, 100, 2)
    assert [i for chunk in chunks for i in chunk] == list(range(100))
    assert len({len(chunk) for chunk in chunks[:-1]}) == 1


@needs_fork
def test_costs_change_the_order_of_work_not_of_results() -> None:
    items = list(range(MIN_PARALLEL_ITEMS * 3))
    done: list[int] = []
    results = parallel_map(_square_and_where, items, 2, progress=done.append, costs=[n % 5 for n in items])
    assert [square for square, _, _ in results] == [n * n for n in items]
    assert done[-1] == len(items) and done == sorted(done)


def _collector_state(_: int) -> bool:
    return gc.isenabled()


@needs_fork
def test_the_parent_collects_nothing_while_results_arrive() -> None:
    seen: list[bool] = []
    counts_before = [stats["collections"] for stats in gc.get_stats()]
    results = parallel_map(_collector_state, list(range(MIN_PARALLEL_ITEMS * 2)), 2, meanwhile=lambda: seen.append(gc.isenabled()))
    # The workers collect as usual; here, neither what ``meanwhile`` does nor the
    # results arriving start a collection, and the collector is back afterwards.
    assert all(results)
    assert seen == [False]
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert [stats["collections"] for stats in gc.get_stats()][2] == counts_before[2]
