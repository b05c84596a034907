"""Keep Python's full garbage collections off the results the operator is reviewing.

With 100,000 results loaded the interpreter tracks ~600,000 container objects (each
image's ``Path`` and its parts list, table and store bookkeeping). A full collection
walks all of them: ~350 ms on a 2-core machine, which could land on any slider move or
click. Results live unchanged until the next run or run file replaces them, so once a
run has finished or a run file is open they are moved out of the collector's reach
(``gc.freeze``); later collections walk only newer objects (~10 us instead).

Frozen objects are still freed by reference counting when the results are replaced;
only reference cycles among them would wait. So each settle point first thaws and
collects (one pause, at a moment nobody is tuning a threshold) before freezing again.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect once, then freeze everything alive (call when results stop changing)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def frozen_objects() -> int:
    """How many objects the collector currently skips."""
    return gc.get_freeze_count()
