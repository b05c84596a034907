"""Shared test set-up: offscreen Qt, no network, isolated caches."""

from __future__ import annotations

import os

# Set before anything imports Qt; never by hand.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests must not depend on (or write to) the user's caches.
os.environ.setdefault("PATCHCORE_GUI_TEST", "1")
