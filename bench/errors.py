"""Exceptions that the CLI turns into one-line messages and exit codes.

Anything the user can fix (a bad suite, a missing dataset, a missing run) raises a
`UserError`; the CLI prints its message on one line and exits 2, with no traceback.
"""


def one_line(text: str) -> str:
    """`text` with line breaks and other unprintable characters escaped (`\\n`, `\\x00`), so
    that a message quoting user input (a key, a path) stays on one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class UserError(Exception):
    """Bad input the user can fix. Exit code 2."""

    exit_code = 2


class SuiteError(UserError):
    """A suite file failed validation: `file: key.path (line N): expected ...`."""

    def __init__(self, file, key: str, message: str, line: int | None = None):
        self.file, self.key, self.line = str(file), key, line
        where = f"{key} (line {line})" if line else key
        super().__init__(one_line(f"{file}: {where}: {message}"))


class DatasetNotFound(UserError):
    """A dataset's files are not where the suite says; the message says how to provide them."""


class CellFailed(Exception):
    """A cell could not finish (divergence, collapse...). Recorded in the results with its reason.

    `records` are rows the cell measured before it failed (table name -> rows); the journal
    keeps them with the failed cell, so a GAN's FID curve up to its divergence is not lost.
    """

    def __init__(self, reason: str, records: dict[str, list[dict]] | None = None):
        super().__init__(reason)
        self.records = records or {}

    def __reduce__(self):  # pickles with its records (Ray and process pools send exceptions)
        return (type(self), (str(self), self.records))
