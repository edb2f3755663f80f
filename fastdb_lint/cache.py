"""On-disk cache of index facts and lint results, keyed by content hash.

Four kinds of entries, each one small file written atomically (temp file + rename), so
concurrent runs can share a cache directory and a reader never sees half an entry:

* facts: ``hash(content hash, project-relative path, tool version)`` -> the file's pickled
  :class:`~fastdb_lint.analysis.index.FileFacts` plus a digest of them;
* shapes: the same key -> the file's pickled shape, kept apart from its facts because
  only the files a run lints need it;
* results: ``hash(content hash, path, tool version, rule settings, project fingerprint)`` ->
  the file's findings as plain data;
* terms: ``hash(project fingerprint, tool version)`` -> the project symbols rule
  preconditions read (:class:`~fastdb_lint.rules.base.ProjectTerms`);
* packs: ``hash(rule settings, the run's files, tool version)`` -> the facts digests and
  results a run over these files read or wrote, so that the next such run reads one
  entry instead of one per file. The entries per file stay the reference: a pack only
  answers for keys it holds, and is rewritten when a run used anything it lacked.

The project fingerprint is a hash of every file's facts digest, so editing the body of
one function re-lints that file only, while a change to what other files can see (a new
session alias, a model's relationships) re-lints the project. A warm run whose entries
all hit never imports LibCST. Unreadable or corrupt entries count as misses.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from pathlib import Path
from typing import Any, Iterable

from fastdb_lint import __version__

try:
    # BLAKE2 without ``hashlib``, whose import loads OpenSSL (milliseconds that a warm
    # run, otherwise all cache hits, would spend on nothing else).
    from _blake2 import blake2b
except ImportError:  # an interpreter built without it
    from hashlib import blake2b

CACHE_DIR_NAME = ".fastdb_lint_cache"
ENV_VAR = "FASTDB_LINT_CACHE_DIR"
_FORMAT = "1"


def content_hash(data: bytes) -> str:
    return blake2b(data, digest_size=20).hexdigest()


_BUILD: str | None = None


def build_id() -> str:
    """The tool version plus a hash of the package's own sources, so that a cache
    written by another build of the same version is never trusted."""
    global _BUILD
    if _BUILD is None:
        digest = blake2b(digest_size=16)
        package = os.path.dirname(os.path.abspath(__file__))
        for relative in _sources(package):
            try:
                with open(os.path.join(package, relative), "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            digest.update(relative.replace(os.sep, "/").encode())
            digest.update(data)
        _BUILD = f"{__version__}-{digest.hexdigest()}"
    return _BUILD


def _sources(package: str) -> list[str]:
    """The package's ``.py`` files, relative to it, in a stable order."""
    found: list[str] = []
    for directory, subdirs, files in os.walk(package):
        subdirs[:] = [name for name in subdirs if name != "__pycache__"]
        base = os.path.relpath(directory, package)
        found.extend(name if base == "." else os.path.join(base, name) for name in files if name.endswith(".py"))
    return sorted(found, key=lambda name: name.replace(os.sep, "/"))


def _key(*parts: str) -> str:
    digest = blake2b(digest_size=20)
    for part in (build_id(), _FORMAT, *parts):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def project_fingerprint(facts_digests: list[tuple[str, str]]) -> str:
    digest = blake2b(digest_size=20)
    for module_rel, facts_digest in sorted(facts_digests):
        digest.update(f"{module_rel}\0{facts_digest}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class Cache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._root = os.fspath(directory)
        self._ready = False
        self.hits = 0
        self.misses = 0
        self._pack_key: str | None = None
        self._packed_facts: dict[str, str] = {}
        self._packed_results: dict[str, list[dict[str, Any]]] = {}
        self._used_facts: dict[str, str] = {}
        self._used_results: dict[str, list[dict[str, Any]]] = {}
        # Pickled facts read with their digest, kept for a lint pass that needs them.
        self._blobs: dict[str, bytes] = {}

    # -- storage ----------------------------------------------------------------

    def _path(self, kind: str, key: str) -> Path:
        return Path(self._location(kind, key))

    def _location(self, kind: str, key: str) -> str:
        sep = os.sep
        return f"{self._root}{sep}{kind}{sep}{key[:2]}{sep}{key[2:]}"

    def _prepare(self) -> None:
        if self._ready:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        gitignore = self.directory / ".gitignore"
        if not gitignore.exists():
            write_new_atomic(gitignore, b"# Created by fastdb-lint\n*\n")
        tag = self.directory / "CACHEDIR.TAG"
        if not tag.exists():
            write_new_atomic(tag, b"Signature: 8a477f597d28d172789f06886806bc55\n# fastdb-lint cache\n")
        self._ready = True

    def _read(self, kind: str, key: str) -> bytes | None:
        try:
            with open(self._location(kind, key), "rb") as handle:
                data = handle.read()
        except OSError:
            self.misses += 1
            return None
        self.hits += 1
        return data

    def _write(self, kind: str, key: str, data: bytes) -> None:
        try:
            self._prepare()
            path = self._path(kind, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_new_atomic(path, data)
        except OSError:
            pass  # a cache that cannot be written only makes the next run slower

    # -- facts ------------------------------------------------------------------

    @staticmethod
    def facts_key(digest: str, module_rel: str) -> str:
        """``digest``: the :func:`content_hash` of the file's bytes."""
        return _key("facts", digest, module_rel)

    def get_facts_digest(self, key: str) -> str | None:
        """The digest of the facts stored under ``key`` (see :func:`facts_digest`),
        without reading the facts themselves when the open pack has it."""
        digest = self._packed_facts.get(key)
        if digest is None:
            entry = self._facts_entry(key)
            if entry is None:
                return None
            digest, self._blobs[key] = entry
        if self._pack_key is not None:
            self._used_facts[key] = digest
        return digest

    def get_facts(self, key: str) -> Any | None:
        """The facts stored under ``key`` (None when absent or unreadable)."""
        blob = self._blobs.pop(key, None)
        if blob is None:
            entry = self._facts_entry(key)
            if entry is None:
                return None
            blob = entry[1]
        return self.load_facts(blob)

    def _facts_entry(self, key: str) -> tuple[str, bytes] | None:
        """(digest, pickled facts) of a facts entry: the digest's 40 characters, a line
        break, the pickle."""
        data = self._read("facts", key)
        if data is None or len(data) < 41 or data[40:41] != b"\n":
            return None
        return data[:40].decode("ascii", "replace"), data[41:]

    @staticmethod
    def load_facts(blob: bytes) -> Any | None:
        import pickle

        try:
            return pickle.loads(blob)
        except Exception:
            return None

    def put_facts(self, key: str, facts: Any) -> str:
        """Store a file's facts; their ``shape`` goes to an entry of its own, read only
        for the files a run lints (see :meth:`get_shape`)."""
        import pickle

        shape = getattr(facts, "shape", None)
        if shape is not None:
            facts = dataclasses.replace(facts, shape=None)
            self._write("shape", key, pickle.dumps(shape, protocol=pickle.HIGHEST_PROTOCOL))
        blob = pickle.dumps(facts, protocol=pickle.HIGHEST_PROTOCOL)
        digest = facts_digest(facts)
        self._write("facts", key, digest.encode("ascii") + b"\n" + blob)
        if self._pack_key is not None:
            self._used_facts[key] = digest
        return digest

    def get_shape(self, key: str) -> Any | None:
        """The shape stored with the facts under ``key`` (None when absent or unreadable)."""
        data = self._read("shape", key)
        return None if data is None else self.load_facts(data)

    # -- results ----------------------------------------------------------------

    @staticmethod
    def result_key(digest: str, relpath: str, settings_fp: str, project_fp: str) -> str:
        return _key("result", digest, relpath, settings_fp, project_fp)

    def get_result(self, key: str) -> list[dict[str, Any]] | None:
        value = self._packed_results.get(key)
        if value is None:
            data = self._read("result", key)
            if data is None:
                return None
            try:
                value = json.loads(data)
            except ValueError:
                return None
            if not isinstance(value, list):
                return None
        if self._pack_key is not None:
            self._used_results[key] = value
        return value

    def put_result(self, key: str, findings: list[dict[str, Any]]) -> None:
        self._write("result", key, json.dumps(findings, separators=(",", ":")).encode("utf-8"))
        if self._pack_key is not None:
            self._used_results[key] = findings

    # -- packs ------------------------------------------------------------------

    @staticmethod
    def pack_key(settings_fp: str, relpaths: Iterable[str]) -> str:
        return _key("pack", settings_fp, *sorted(relpaths))

    def open_pack(self, key: str) -> None:
        """Answer from the pack under ``key`` where it can, and track what the run uses
        until :meth:`close_pack`."""
        self._pack_key = key
        self._packed_facts, self._packed_results = {}, {}
        self._used_facts, self._used_results = {}, {}
        data = self._read("pack", key)
        if data is None:
            return
        import pickle

        try:
            pack = pickle.loads(data)
            facts, results = pack["facts"], pack["results"]
        except Exception:  # whatever a damaged pickle raises
            return
        if (
            isinstance(facts, dict)
            and isinstance(results, dict)
            and all(isinstance(v, str) and len(v) == 40 for v in facts.values())
            and all(isinstance(v, list) for v in results.values())
        ):
            self._packed_facts, self._packed_results = facts, results

    def close_pack(self) -> None:
        """Write what the run used as the pack, unless the pack already held exactly that."""
        key = self._pack_key
        if key is None:
            return
        self._pack_key = None
        if self._used_facts != self._packed_facts or self._used_results != self._packed_results:
            import pickle

            pack = {"facts": self._used_facts, "results": self._used_results}
            self._write("pack", key, pickle.dumps(pack, protocol=pickle.HIGHEST_PROTOCOL))
        self._packed_facts, self._packed_results = {}, {}
        self._used_facts, self._used_results = {}, {}

    # -- project terms ----------------------------------------------------------

    @staticmethod
    def terms_key(project_fp: str) -> str:
        return _key("terms", project_fp)

    def get_terms(self, key: str) -> Any | None:
        data = self._read("terms", key)
        return None if data is None else self.load_facts(data)

    def put_terms(self, key: str, terms: Any) -> None:
        import pickle

        self._write("terms", key, pickle.dumps(terms, protocol=pickle.HIGHEST_PROTOCOL))


# Fields that say where something is, or what only the file itself needs (its shape),
# not what other files can see of it: a comment added above a model, or a call added in
# a function, must not make every other file's cached result stale.
_PRIVATE_FIELDS = frozenset({"path", "line", "shape"})


def _canonical(value: Any, out: list[str]) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out.append(type(value).__name__ + "(")
        for f in dataclasses.fields(value):
            if f.name not in _PRIVATE_FIELDS:
                out.append(f.name + "=")
                _canonical(getattr(value, f.name), out)
        out.append(")")
    elif isinstance(value, dict):
        out.append("{")
        for key in sorted(value, key=repr):
            out.append(repr(key) + ":")
            _canonical(value[key], out)
        out.append("}")
    elif isinstance(value, (set, frozenset)):
        out.append("{" + ",".join(sorted(repr(v) for v in value)) + "}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for item in value:
            _canonical(item, out)
            out.append(",")
        out.append("]")
    elif hasattr(value, "__getstate__") and not isinstance(value, (str, bytes, int, float, bool, type(None))):
        state = value.__getstate__()
        out.append(type(value).__name__)
        _canonical(state, out)
    else:
        out.append(repr(value))


def facts_digest(facts: Any) -> str:
    """A digest of what a file's facts tell other files: independent of set order
    (which varies between processes) and of line numbers."""
    out: list[str] = []
    _canonical(facts, out)
    return blake2b("".join(out).encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()


_TEMPORARY_NUMBERS = itertools.count()


def write_new_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that concurrent readers see a whole file or
    none; created as ``open()`` creates files (0o666 less the umask), through a
    temporary name of this process's own. For files the program owns (the cache,
    compiled code); a user's file keeps its mode: see ``runner.write_atomic``."""
    temporary = path.with_name(f".tmp-{path.name}-{os.getpid()}-{next(_TEMPORARY_NUMBERS)}")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def default_directory(config_root: Path) -> Path:
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else config_root / CACHE_DIR_NAME
