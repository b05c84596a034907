"""The prediction loop's prefetch thread: same items in order, errors surface, early stop."""

from __future__ import annotations

import threading

import pytest

from patchcore_gui.core.batching import Prefetcher


def test_prefetcher_yields_every_item_in_order_then_stops() -> None:
    p = Prefetcher(range(25), depth=2)
    assert list(p) == list(range(25))
    with pytest.raises(StopIteration):
        next(p)  # stays exhausted
    p.close()


def test_prefetcher_reraises_the_fetch_error_in_the_consumer() -> None:
    def items():
        yield 1
        yield 2
        raise OSError("disk gone")

    p = Prefetcher(items())
    assert next(p) == 1 and next(p) == 2
    with pytest.raises(OSError, match="disk gone"):
        next(p)
    p.close()


def test_prefetcher_runs_ahead_by_at_most_depth_and_stops_on_close() -> None:
    produced: list[int] = []
    gate = threading.Event()

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    p = Prefetcher(items(), depth=1)
    assert next(p) == 0
    # The thread fetches ahead: at most the queued item plus the one it is putting.
    for _ in range(50):
        if len(produced) >= 3:
            break
        gate.wait(0.01)
    assert len(produced) <= 3
    p.close()
    assert not p._thread.is_alive()
    assert len(produced) <= 4
