"""Exceptions that the CLI turns into one-line messages and exit codes.

Anything the user can fix (a bad suite, a missing dataset, a missing run) raises a
`UserError`; the CLI prints its message on one line and exits 2, with no traceback.
"""


class UserError(Exception):
    """Bad input the user can fix. Exit code 2."""

    exit_code = 2


class SuiteError(UserError):
    """A suite file failed validation: `file: key.path (line N): expected ...`."""

    def __init__(self, file, key: str, message: str, line: int | None = None):
        self.file, self.key, self.line = str(file), key, line
        where = f"{key} (line {line})" if line else key
        super().__init__(f"{file}: {where}: {message}")


class DatasetNotFound(UserError):
    """A dataset's files are not where the suite says; the message says how to provide them."""


class CellFailed(Exception):
    """A cell could not finish (divergence, collapse...). Recorded in the results with its reason."""
