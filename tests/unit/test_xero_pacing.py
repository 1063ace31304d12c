"""The Xero client paces itself under the per-minute limit instead of collecting 429s."""

from connectors.xero.pacing import MinutePacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_calls_past_the_minute_budget_wait_until_the_oldest_leaves_the_window():
    clock = Clock()
    pacer = MinutePacer(3, clock=clock)
    assert [pacer.wait_needed() for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 20
    assert pacer.wait_needed() == 40.0
    clock.now += 40
    assert pacer.wait_needed() == 0.0
    assert pacer.held_back == 1


def test_a_retry_after_from_xero_holds_every_call_back_until_it_has_passed():
    clock = Clock()
    pacer = MinutePacer(60, clock=clock)
    pacer.refused(12.5)
    assert pacer.wait_needed() == 12.5
    clock.now += 12.5
    assert pacer.wait_needed() == 0.0


def test_a_server_that_reports_no_limit_is_not_paced_until_it_reports_one_again():
    clock = Clock()
    pacer = MinutePacer(2, clock=clock)
    pacer.server_reports_limit(False)
    assert [pacer.wait_needed() for _ in range(5)] == [0.0] * 5
    pacer.server_reports_limit(True)
    assert pacer.wait_needed() == 60.0
    assert pacer.held_back == 1
