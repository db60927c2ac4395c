"""One progress bar over cells, with counts of running, finished and failed cells."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class CellProgress:
    def __init__(self, total: int, already_ok: int = 0, already_failed: int = 0, enabled: bool = True):
        self.running, self.ok, self.failed = 0, already_ok, already_failed
        self.bar = tqdm(total=total, initial=already_ok + already_failed, desc="cells", unit="cell",
                        disable=not enabled, file=sys.stderr, dynamic_ncols=True)
        self._refresh()

    def started(self, label: str = "", n: int = 1) -> None:
        self.running += n
        self._refresh(label)

    def finished(self, ok: bool, ran: bool = True) -> None:
        self.running -= 1 if ran else 0
        self.ok += ok
        self.failed += not ok
        self.bar.update(1)
        self._refresh()

    def _refresh(self, label: str = "") -> None:
        post = f"running={self.running} ok={self.ok} failed={self.failed}"
        self.bar.set_postfix_str(f"{post} {label}".strip(), refresh=True)

    def close(self) -> None:
        self.bar.close()
