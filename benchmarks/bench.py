"""Benchmark fastdb-lint against a bare LibCST parse (and ruff / Fixit when installed).

Usage: python benchmarks/bench.py TREE [--runs 5] [--output results.md]

Times, side by side on a copy of TREE (medians over --runs; each ratio pairs runs made
one after the other: cold with parse, warm with ruff, edit-one with warm, one-file with
the import):
  * parse      - ``libcst.parse_module`` of every .py file, one process (the floor of
                 any LibCST tool)
  * cold       - ``fastdb-lint check --no-cache`` (default rules, all cores)
  * warm       - a second run with every file in the cache
  * edit-one   - a run after changing one file
  * one-file   - linting one small file vs ``python -c "import libcst, click"``
  * ruff       - ``ruff check --no-cache`` (default rules), if installed
  * fixit      - ``fixit lint``, if installed (a single run: it is slow)
plus peak memory of the whole process tree (cold run), files and lines per second, and
the cold time on 10%, 50% and 100% of the files (linear scaling). Writes a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

PARSE_SCRIPT = """
import sys, libcst
from pathlib import Path
for p in sorted(Path(sys.argv[1]).rglob("*.py")):
    try:
        libcst.parse_module(p.read_bytes())
    except Exception:
        pass
"""
SMALL_FILE = """\
from sqlalchemy.ext.asyncio import AsyncSession


async def create_user(session: AsyncSession, user) -> None:
    session.add(user)
    await session.commit()
"""


def _tree_rss_kb(root_pid: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            ppid = int(fields[1])
            with open(f"/proc/{entry}/statm", encoding="ascii") as handle:
                pages = int(handle.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        pid = int(entry)
        children.setdefault(ppid, []).append(pid)
        rss[pid] = pages * (os.sysconf("SC_PAGE_SIZE") // 1024)
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total


# Every command runs as in a normal installation, with Python's bytecode cache on
# (filled by an untimed run first), whatever the calling environment says.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], cwd: Path, measure_memory: bool = False) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    peak = 0
    if measure_memory and os.path.isdir("/proc"):
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss_kb(proc.pid))
                time.sleep(0.02)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        proc.wait()
        done.set()
        thread.join()
    else:
        proc.wait()
    return time.perf_counter() - start, peak


def median_time(cmd: list[str], cwd: Path, runs: int, before: object = None, warmup: bool = False) -> float:
    if warmup:
        timed(cmd, cwd)
    samples = []
    for _ in range(runs):
        if callable(before):
            before()
        samples.append(timed(cmd, cwd)[0])
    return statistics.median(samples)


def paired(
    base: Callable[[], float], other: Callable[[], float], runs: int
) -> tuple[float, float, float]:
    """Two cases timed in alternation (base, other, base, other, ...): their medians and
    the median of ``other / base`` within each pair. A shared machine speeds up and
    slows down during a benchmark; both runs of a pair see about the same machine, so
    the paired ratio moves far less than a ratio of medians taken minutes apart."""
    base_times, other_times = [], []
    for _ in range(runs):
        base_times.append(base())
        other_times.append(other())
    ratios = [o / b for b, o in zip(base_times, other_times)]
    return statistics.median(base_times), statistics.median(other_times), statistics.median(ratios)


def run_of(cmd: list[str], cwd: Path, before: Callable[[], None] | None = None) -> Callable[[], float]:
    def run() -> float:
        if before is not None:
            before()
        return timed(cmd, cwd)[0]

    return run


def count_lines(tree: Path) -> tuple[int, int]:
    files = sorted(tree.rglob("*.py"))
    lines = 0
    for path in files:
        try:
            lines += path.read_bytes().count(b"\n")
        except OSError:
            pass
    return len(files), lines


def subset(tree: Path, fraction: float, dest: Path) -> Path:
    files = sorted(tree.rglob("*.py"))
    keep = files[: max(1, int(len(files) * fraction))]
    for path in keep:
        target = dest / path.relative_to(tree)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--no-fixit", action="store_true", help="skip Fixit even if installed")
    args = parser.parse_args()

    python = sys.executable
    fastdb = [python, "-m", "fastdb_lint", "check", "--exit-zero", "--output-format", "concise"]
    with tempfile.TemporaryDirectory(prefix="fastdb-bench-") as tmp:
        work = Path(tmp) / "tree"
        shutil.copytree(args.tree, work, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        cache = Path(tmp) / "cache"
        files, lines = count_lines(work)
        rows: list[tuple[str, float, str]] = []
        small = Path(tmp) / "small.py"
        small.write_text(SMALL_FILE, encoding="utf-8")
        timed([*fastdb, "--no-cache", str(small)], Path(tmp))  # fills the bytecode cache

        parse_cmd = [python, "-c", PARSE_SCRIPT, str(work)]
        cold_cmd = [*fastdb, "--no-cache", "."]
        parse, cold, cold_ratio = paired(run_of(parse_cmd, work), run_of(cold_cmd, work), args.runs)
        _, peak_kb = timed(cold_cmd, work, measure_memory=True)
        rows.append(("bare LibCST parse (1 process)", parse, "1.00x parse"))
        rows.append(("fastdb-lint cold (no cache)", cold, f"{cold_ratio:.2f}x parse"))

        warm_cmd = [*fastdb, "--cache-dir", str(cache), "."]
        timed(warm_cmd, work)  # fills the cache
        ruff = shutil.which("ruff")
        if ruff:
            ruff_cmd = [ruff, "check", "--no-cache", "--exit-zero", "--isolated", "."]
            ruff_time, warm, warm_ratio = paired(run_of(ruff_cmd, work), run_of(warm_cmd, work), args.runs)
            rows.append(("fastdb-lint warm (all cached)", warm, f"{warm_ratio:.2f}x ruff"))
        else:
            warm = median_time(warm_cmd, work, args.runs)
            rows.append(("fastdb-lint warm (all cached)", warm, f"{warm / parse:.2f}x parse"))

        victim = next((p for p in sorted(work.rglob("*.py")) if p.stat().st_size > 200), None)
        counter = [0]

        def edit() -> None:
            if victim is not None:
                counter[0] += 1
                with victim.open("a", encoding="utf-8") as handle:
                    handle.write(f"\n# benchmark edit {counter[0]}\n")

        _, edited, edit_ratio = paired(run_of(warm_cmd, work), run_of(warm_cmd, work, before=edit), args.runs)
        rows.append(("fastdb-lint after editing one file", edited, f"{edit_ratio:.2f}x warm"))

        import_cmd = [python, "-c", "import libcst, click"]
        timed(import_cmd, Path(tmp))
        imports, one, one_ratio = paired(
            run_of(import_cmd, Path(tmp)), run_of([*fastdb, "--no-cache", str(small)], Path(tmp)), args.runs
        )
        rows.append(('python -c "import libcst, click"', imports, "1.00x"))
        rows.append(("fastdb-lint one small file", one, f"{one_ratio:.2f}x import"))
        if ruff:
            rows.append(("ruff check --no-cache (default rules)", ruff_time, "1.00x ruff"))
        fixit = shutil.which("fixit")
        if fixit and not args.no_fixit:
            fixit_time, _ = timed([fixit, "lint", "."], work)
            rows.append(("fixit lint (1 run)", fixit_time, f"{fixit_time / cold:.1f}x fastdb cold"))

        scaling = []
        for fraction in (0.1, 0.5, 1.0):
            part = subset(work, fraction, Path(tmp) / f"part{int(fraction * 100)}")
            n, n_lines = count_lines(part)
            seconds = median_time([*fastdb, "--no-cache", "."], part, max(1, args.runs // 2))
            scaling.append((fraction, n, n_lines, seconds))

    out = [
        f"Tree: `{args.tree}` ({files} .py files, {lines} lines); {os.cpu_count()} cores; "
        f"Python {sys.version.split()[0]}; medians of {args.runs} runs. Each ratio is the median of the ratios "
        "within pairs of runs made one after the other (cold and the bare parse, warm and ruff, ...).",
        "",
        "| case | seconds | ratio |",
        "|---|---:|---:|",
        *(f"| {name} | {seconds:.2f} | {ratio} |" for name, seconds, ratio in rows),
        "",
        f"Cold run: {files / cold:.0f} files/s, {lines / cold:.0f} lines/s; "
        f"peak memory of the process tree {peak_kb / 1024:.0f} MB.",
        "",
        "| share of tree | files | lines | cold seconds | lines/s |",
        "|---:|---:|---:|---:|---:|",
        *(f"| {int(f * 100)}% | {n} | {nl} | {s:.2f} | {nl / s:.0f} |" for f, n, nl, s in scaling),
    ]
    text = "\n".join(out) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
