"""Child process that prepares the demo: ``python -m patchcore_gui.qt.demo_child``.

Runs ``ensure_demo()`` (which may train a model for minutes on first start) in its
own process, so the window can stop it at once when it closes: a thread inside torch
cannot be interrupted, and one still running at interpreter exit aborts the process.
Speaks one JSON object per stdout line: ``{"log": text}``, then ``{"ready": [model,
images]}`` or ``{"error": one line}``. No Qt here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from collections.abc import Sequence

DEFAULT_TARGET = "patchcore_gui.core.demo:ensure_demo"


def _say(**message: object) -> None:
    print(json.dumps(message), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Prepare the PatchCore Inspector demo.")
    p.add_argument("--target", default=DEFAULT_TARGET, help="module:function returning (model, images)")
    args = p.parse_args(argv)
    module_name, _, func_name = args.target.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        model_path, images_dir = func(log=lambda text: _say(log=str(text)))
        _say(ready=[str(model_path), str(images_dir)])
        return 0
    except Exception as exc:
        traceback.print_exc()
        lines = str(exc).strip().splitlines()
        _say(error=f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)
        return 1


if __name__ == "__main__":
    sys.exit(main())
