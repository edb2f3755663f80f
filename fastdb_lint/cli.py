"""Command line: ``fastdb-lint check``, ``fastdb-lint rule CODE``, ``fastdb-lint rules``.

Exit codes follow ruff: 0 no findings left, 1 findings, 2 usage, configuration or I/O
error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from fastdb_lint import __version__
from fastdb_lint.cache import CACHE_DIR_NAME, default_directory as default_cache_directory
from fastdb_lint.cache import ENV_VAR as CACHE_ENV_VAR
from fastdb_lint.catalog import RULES
from fastdb_lint.config import ConfigError, Settings, load
from fastdb_lint.parallel import default_jobs
from fastdb_lint.registry import all_rules, get_rule
from fastdb_lint.report import FORMATS, ReportContext, render
from fastdb_lint.runner import RunOptions, run

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _fail(message: str) -> None:
    click.echo(f"fastdb-lint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _use_color(stream: object) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _describe_settings(settings: Settings) -> str:
    from fastdb_lint.discovery import DEFAULT_EXCLUDE

    lines = [
        f"config file: {settings.config_path or '(none: defaults)'}",
        f"project root: {settings.root}",
        f"select: {list(settings.select) if settings.select is not None else '(default: every non-opt-in rule)'}",
        f"extend-select: {list(settings.extend_select)}",
        f"ignore: {list(settings.ignore)}",
        f"per-file-ignores: {dict((p, list(c)) for p, c in settings.per_file_ignores)}",
        f"exclude: {list(settings.exclude) if settings.exclude is not None else list(DEFAULT_EXCLUDE)}",
        f"extend-exclude: {list(settings.extend_exclude)}",
        f"respect-gitignore: {str(settings.respect_gitignore).lower()}",
        f"force-exclude: {str(settings.force_exclude).lower()}",
        f"enabled rules ({len(settings.enabled)}): {', '.join(sorted(settings.enabled))}",
    ]
    return "\n".join(lines) + "\n"


def _ci_workspace() -> Path | None:
    """The CI checkout, so that annotations point at repository paths."""
    for variable in ("GITHUB_WORKSPACE", "CI_PROJECT_DIR"):
        value = os.environ.get(variable)
        if value:
            return Path(value)
    return None


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


class _Main(click.Group):
    """Turns an unexpected exception into one error line and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BrokenPipeError:
            # The reader went away (``| head``): stop quietly, like other command-line tools.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_ERROR)
        except RecursionError:
            _fail("internal error: maximum recursion depth exceeded (deeply nested input?); please report this")
        except Exception as exc:
            _fail(f"internal error: {type(exc).__name__}: {exc}; please report this")
        return None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fastdb-lint")
def main() -> None:
    """Find and fix database anti-patterns in FastAPI + SQLAlchemy 2.x code."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--select", multiple=True, help="Rule codes or prefixes to enable (comma-separated; ALL).")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable.")
@click.option("--extend-select", multiple=True, help="Rule codes or prefixes to enable on top of the selection.")
@click.option("--fix", is_flag=True, help="Apply safe fixes.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply (with --fix) or show unsafe fixes.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff; write nothing.")
@click.option("--show-fixes", is_flag=True, help="List the fixes that were applied.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings remain.")
@click.option("--statistics", is_flag=True, help="Print counts per rule instead of findings.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Configuration file to use.")
@click.option(
    "--output-format",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format (default: concise).",
)
@click.option("-o", "--output-file", type=click.Path(path_type=Path), help="Write the report to this file.")
@click.option("--stdin-filename", help="Lint standard input, reporting it under this file name.")
@click.option("--force-exclude", is_flag=True, default=None, help="Apply exclusions to paths given explicitly too.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    help=f"Cache directory (default: {CACHE_DIR_NAME}/ next to the configuration; env {CACHE_ENV_VAR}).",
)
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option("--baseline", type=click.Path(path_type=Path), help="Ignore the findings recorded in this baseline file.")
@click.option("--write-baseline", type=click.Path(path_type=Path), help="Record the current findings as a baseline.")
@click.option("--add-noqa", is_flag=True, help="Add `# noqa: CODE` comments for the current findings.")
@click.option("--show-files", is_flag=True, help="List the files that would be checked, and exit.")
@click.option("--show-settings", is_flag=True, help="Print the resolved settings and where they come from, and exit.")
def check(
    paths: tuple[Path, ...],
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_select: tuple[str, ...],
    fix: bool,
    unsafe_fixes: bool,
    diff: bool,
    show_fixes: bool,
    exit_zero: bool,
    statistics: bool,
    config_file: Path | None,
    output_format: str | None,
    output_file: Path | None,
    stdin_filename: str | None,
    force_exclude: bool | None,
    no_cache: bool,
    cache_dir: Path | None,
    jobs: int | None,
    baseline: Path | None,
    write_baseline: Path | None,
    add_noqa: bool,
    show_files: bool,
    show_settings: bool,
) -> None:
    """Lint PATHS (default: the current directory)."""
    use_stdin = stdin_filename is not None or paths == (Path("-"),)
    conflicts = [
        ("--add-noqa", add_noqa, "--fix", fix),
        ("--add-noqa", add_noqa, "--diff", diff),
        ("--add-noqa", add_noqa, "standard input", use_stdin),
        ("--add-noqa", add_noqa, "--write-baseline", write_baseline is not None),
        ("--no-cache", no_cache, "--cache-dir", cache_dir is not None),
    ]
    for first, first_set, second, second_set in conflicts:
        if first_set and second_set:
            _fail(f"{first} cannot be used with {second}")
    targets = [Path(".")] if not paths or use_stdin else list(paths)
    start = Path(stdin_filename).parent if stdin_filename else targets[0]
    try:
        settings = load(config_file, start if start.exists() else Path.cwd())
        settings = settings.with_cli(
            select=_split(select) or None,
            ignore=_split(ignore),
            extend_select=_split(extend_select),
            force_exclude=force_exclude,
        )
    except ConfigError as exc:
        _fail(str(exc))
        return
    if show_settings:
        click.echo(_describe_settings(settings), nl=False)
        sys.exit(EXIT_CLEAN)
    if show_files:
        from fastdb_lint.discovery import discover
        from fastdb_lint.runner import display_path

        found = discover(targets, settings)
        for error in found.errors:
            click.echo(f"fastdb-lint: error: {error}", err=True)
        for path in sorted(found.files, key=display_path):
            click.echo(display_path(path))
        sys.exit(EXIT_ERROR if found.errors else EXIT_CLEAN)
    stdin_text: bytes | None = None
    if use_stdin:
        stdin_text = click.get_binary_stream("stdin").read()
    from fastdb_lint.progress import Progress

    progress = Progress.for_terminal() if not use_stdin else None
    options = RunOptions(
        fix=fix,
        unsafe_fixes=unsafe_fixes,
        diff=diff,
        stdin_filename=stdin_filename,
        stdin_text=stdin_text,
        cache_dir=None if no_cache else (cache_dir or default_cache_directory(settings.root)),
        jobs=jobs or default_jobs(),
        progress=progress,
    )
    try:
        result = run(targets, settings, options)
    except KeyboardInterrupt:
        if progress is not None:
            progress.clear()
        _fail("interrupted")
        return
    finally:
        if progress is not None:
            progress.clear()

    for error in result.errors:
        click.echo(f"fastdb-lint: error: {error}", err=True)

    if add_noqa:
        from fastdb_lint.runner import add_noqa_comments

        added, problems = add_noqa_comments(result)
        for problem in problems:
            click.echo(f"fastdb-lint: error: {problem}", err=True)
        click.echo(f"Added {added} noqa directive{'s' if added != 1 else ''}.", err=True)
        sys.exit(EXIT_ERROR if problems or result.has_error else EXIT_CLEAN)
    if write_baseline is not None:
        from fastdb_lint import baseline as baselines

        try:
            count = baselines.write(write_baseline, result.findings, settings.root, result.sources)
        except baselines.BaselineError as exc:
            _fail(str(exc))
        click.echo(f"Wrote {count} finding{'s' if count != 1 else ''} to {write_baseline}.", err=True)
        sys.exit(EXIT_ERROR if result.has_error else EXIT_CLEAN)
    if baseline is not None:
        from fastdb_lint import baseline as baselines

        try:
            recorded = baselines.load(baseline)
        except baselines.BaselineError as exc:
            _fail(str(exc))
        result.findings, _covered = baselines.filter_new(result.findings, recorded, settings.root, result.sources)

    if diff:
        if result.diffs:
            click.echo("".join(result.diffs), nl=False)
        fixes = len(result.fixed)
        click.echo(f"Would fix {fixes} error{'s' if fixes != 1 else ''}." if fixes else "No fixes available.", err=True)
        sys.exit(EXIT_ERROR if result.has_error else (EXIT_FINDINGS if result.diffs else EXIT_CLEAN))

    if result.stdin_output is not None and fix:
        sys.stdout.buffer.write(result.stdin_output)
        sys.stdout.flush()

    exit_code = EXIT_FINDINGS if result.findings else EXIT_CLEAN
    if exit_zero and exit_code == EXIT_FINDINGS:
        exit_code = EXIT_CLEAN
    if result.has_error:
        exit_code = EXIT_ERROR

    stream_is_file = output_file is not None
    report_ctx = ReportContext(
        root=settings.root,
        sources=result.sources,
        fixed=result.fixed,
        show_fixes=show_fixes,
        unsafe_fixes=unsafe_fixes,
        color=not stream_is_file and _use_color(sys.stdout),
        exit_code=exit_code,
        errors=result.errors,
        files_checked=result.files_checked,
        workspace=_ci_workspace(),
    )
    fmt = output_format or "concise"
    if statistics:
        from fastdb_lint.report.text import render_statistics

        text = render_statistics(result.findings, report_ctx, fmt)
    else:
        text = render(fmt, result.findings, report_ctx)
        if show_fixes and fmt in ("concise", "full"):
            from fastdb_lint.report.text import render_fix_summary

            text = render_fix_summary(report_ctx) + text
    if result.stdin_output is not None and fix:
        # Fixed code went to stdout: the report goes to stderr.
        click.echo(text, nl=False, err=True)
    elif output_file is not None:
        try:
            output_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {output_file}: {exc.strerror or exc}")
    else:
        click.echo(text, nl=False)
    sys.exit(exit_code)


@main.command("rule")
@click.argument("code")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text")
def rule_command(code: str, output_format: str) -> None:
    """Show the documentation of a rule (by code or name)."""
    rule = get_rule(code)
    if rule is None:
        _fail(f"unknown rule: {code!r} (see `fastdb-lint rules`)")
        return
    if output_format == "json":
        click.echo(json.dumps(_rule_json(rule), indent=2))
        return
    from fastdb_lint.docs import rule_markdown

    click.echo(rule_markdown(rule), nl=False)


def _rule_json(rule: type) -> dict[str, object]:
    return {
        "code": rule.code,
        "name": rule.name,
        "summary": rule.summary,
        "fix": rule.fix.value,
        "opt_in": rule.opt_in,
        "severity": rule.severity.value,
        "explanation": rule.documentation(),
    }


@main.command("rules")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text")
def rules_command(output_format: str) -> None:
    """List every rule: code, name, fix availability, default or opt-in."""
    if output_format == "json":
        click.echo(json.dumps([_rule_json(r) for r in all_rules().values()], indent=2))
        return
    rules = list(RULES.values())
    width = max(len(r.name) for r in rules)
    for rule in rules:
        fix = {"safe": "fix", "unsafe": "unsafe fix", "none": ""}[rule.fix.value]
        status = "opt-in" if rule.opt_in else "default"
        click.echo(f"{rule.code}  {rule.name:<{width}}  {status:<7}  {fix:<10}  {rule.summary}".rstrip())


@main.command("server")
def server_command() -> None:
    """Run the language server (LSP over stdio) for editors; needs the `lsp` extra."""
    try:
        import pygls.lsp.server  # noqa: F401
    except ImportError:
        _fail("the language server needs pygls 2: pip install 'fastdb-lint[lsp]'")
        return
    from fastdb_lint.server import serve

    serve()
