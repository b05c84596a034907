"""Keep Python's full garbage collections off the results the operator is reviewing.

With 100,000 results loaded the interpreter tracks ~600,000 container objects (each
image's ``Path`` and its parts list, table and store bookkeeping). A full collection
walks all of them: ~350-425 ms on a 2-core machine, which could land on any slider
move or click. Results live unchanged until the next run or run file replaces them, so
once a run has finished or a run file is open, everything alive is moved out of the
collector's reach (``gc.freeze``, a constant-time list splice); later collections walk
only newer objects (~0.01 ms instead).

No collection is forced here: a full pass at the end of a run would itself stall the
window (~450 ms with torch loaded, measured by tests/qt/test_responsiveness.py).
Frozen objects are still freed by reference counting when the results are replaced;
only reference cycles among them wait, so ``release`` hands them back to the collector
before a new run or run file replaces the results.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Freeze everything alive (call when results stop changing)."""
    gc.freeze()


def release() -> None:
    """Give frozen objects back to the collector (call before results are replaced)."""
    gc.unfreeze()


def frozen_objects() -> int:
    """How many objects the collector currently skips."""
    return gc.get_freeze_count()
