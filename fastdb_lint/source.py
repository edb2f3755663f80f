"""A file's bytes, its encoding, BOM and line endings, and the text the rules see.

Decoding follows Python's own rules (PEP 263 cookie, UTF-8 BOM, UTF-8 default) so that
a fixed file is written back byte-for-byte the same except where edits apply.
"""

from __future__ import annotations

import codecs
import io
import re
import tokenize
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from fastdb_lint.diagnostics import Location

_NEWLINE = re.compile(r"\r\n|\r|\n")


class SourceError(Exception):
    """A file that is not Python text: binary, undecodable or unreadable."""

    def __init__(self, message: str, row: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based row and column (in bytes) of a byte offset."""
    head = data[:offset]
    row = head.count(b"\n") + 1
    return row, offset - (head.rfind(b"\n") + 1) + 1


@dataclass
class SourceText:
    """Decoded text plus what is needed to encode it back unchanged."""

    text: str
    encoding: str = "utf-8"
    bom: bool = False

    @classmethod
    def decode(cls, data: bytes) -> SourceText:
        if b"\x00" in data:
            raise SourceError("binary file (contains NUL bytes), not Python source", *_position(data, data.index(b"\x00")))
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        except SyntaxError as exc:
            raise SourceError(f"cannot determine the encoding: {exc.msg}") from exc
        bom = data.startswith(codecs.BOM_UTF8)
        if bom:
            data = data[len(codecs.BOM_UTF8) :]
            encoding = "utf-8"
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            row, column = _position(data, exc.start)
            raise SourceError(
                f"cannot decode as {encoding}: {exc.reason} (byte 0x{data[exc.start]:02x} at line {row}, column {column})",
                row,
                column,
            ) from exc
        except LookupError as exc:
            raise SourceError(f"cannot decode as {encoding}: {exc}") from exc
        return cls(text=text, encoding=encoding, bom=bom)

    def encode(self, text: str | None = None) -> bytes:
        body = (self.text if text is None else text).encode(self.encoding)
        return codecs.BOM_UTF8 + body if self.bom else body

    @cached_property
    def line_starts(self) -> list[int]:
        starts = [0]
        starts.extend(m.end() for m in _NEWLINE.finditer(self.text))
        return starts

    @cached_property
    def lines(self) -> list[str]:
        """Lines without their line terminators."""
        return _NEWLINE.split(self.text)

    def offset(self, row: int, column: int) -> int:
        """Offset of a 1-based row and 0-based column."""
        starts = self.line_starts
        row = max(1, min(row, len(starts)))
        return min(starts[row - 1] + column, len(self.text))

    def location(self, offset: int) -> Location:
        """1-based row and column of an offset."""
        starts = self.line_starts
        lo, hi = 0, len(starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return Location(lo + 1, offset - starts[lo] + 1)

    def line(self, row: int) -> str:
        lines = self.lines
        return lines[row - 1] if 0 < row <= len(lines) else ""

    @cached_property
    def newline(self) -> str:
        match = _NEWLINE.search(self.text)
        return match.group() if match else "\n"


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError as exc:
        raise OSError(f"{path}: is a directory") from exc
    except OSError as exc:
        raise OSError(f"{path}: {exc.strerror or exc}") from exc
