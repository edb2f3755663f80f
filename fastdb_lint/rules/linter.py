"""FDB0xx: the linter itself."""

from __future__ import annotations

from fastdb_lint.rules.base import Invalid, Rule, Valid


class ParseError(Rule):
    """
    ## What it does
    Reports a file that cannot be decoded or parsed as Python: a syntax error, a bad
    encoding, a binary file or a template with a `.py` name. One finding per file, at
    the parser's position, with its message; the run goes on with the other files.

    ## Why is this bad?
    A file the linter cannot read is a file nothing checks. It is usually a real syntax
    error, or a non-Python file that should be excluded in the configuration.

    ## Example
    ```python
    def broken(:
        pass
    ```

    ## Fix safety
    There is no fix. The rule is always enabled and cannot be deselected; a file that
    should not be linted belongs in `exclude`.

    Files that mention none of the names any enabled rule needs are not parsed at all,
    so syntax errors in them are not reported (decoding errors always are).
    """

    code = "FDB001"
    name = "parse-error"
    summary = "File cannot be decoded or parsed"
    triggers = ()
    valid = [Valid("from sqlalchemy import select\n\nstmt = select(1)\n")]
    invalid = [Invalid("from sqlalchemy import select\n\ndef broken(:\n    pass\n", line=3)]
