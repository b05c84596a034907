"""PatchCore Inspector: PatchCore anomaly detection with a desktop GUI.

``patchcore_gui.core`` and ``patchcore_gui.io`` never import Qt; the GUI lives in
``patchcore_gui.qt``.
"""

__version__ = "0.1.0"
