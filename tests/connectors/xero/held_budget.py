"""A call budget that holds one call back, as a spent minute would, and lets every other one go."""

from __future__ import annotations


class HoldsOneCall:
    """Holds the `nth` call it is asked about (1 = the first) back for `hold` seconds; the rest go at once."""

    def __init__(self, hold: float, *, nth: int = 1) -> None:
        self.hold = hold
        self.nth = nth
        self.asked = 0

    def wait_needed(self, *, background: bool = False) -> float:
        self.asked += 1
        return self.hold if self.asked == self.nth else 0.0

    def refused(self, retry_after: float | None) -> None: ...

    def server_remaining(self, remaining: int) -> None: ...

    def server_reports_limit(self, reported: bool) -> None: ...
