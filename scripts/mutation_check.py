"""Plant known, plausible bugs one at a time in a copy of the tree and expect the tests to fail.

Each mutation names a file, an exact snippet (found exactly once, or the check stops
with an error: the code moved and the mutation must be updated), its replacement, and
the test files that must catch it. For every mutation the working tree (tracked and
untracked-but-not-ignored files, as they are now) is copied to a fresh temporary folder,
the snippet is replaced, and ``python -m pytest -q -x -p no:cacheprovider <tests>`` runs
there with ``PYTHONPATH`` pointing at the copy (the script checks that the copy's
``patchcore_gui`` is the one imported). A mutation is *killed* when pytest reports failing
tests (exit 1); exit 0 means it *survived*; any other exit (collection error, missing
file, timeout) is an *error*, as it proves nothing. The unmutated copy is run first on
the union of all test files and must pass, so a kill is the mutation's doing.

    .venv/bin/python scripts/mutation_check.py [--only NAME ...] [--list] [--no-baseline]
        [--python PATH] [--timeout SECONDS]

Exit status 0 when every mutation is killed; 1 when one survived or errored. See
docs/mutation-check.md for when to run it and how to add a mutation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    """One planted bug: replace ``old`` (exactly once in ``file``) by ``new``."""

    name: str
    file: str
    old: str
    new: str
    #: pytest arguments: test files (or node ids), optionally with -k expressions.
    tests: tuple[str, ...]


_GUARDS = "tests/core/test_mutation_guards.py"
_TRAINING = "tests/core/test_training_guards.py"
_QT_BOUNDARY = "tests/qt/test_verdict_boundary.py"

MUTATIONS: list[Mutation] = [
    # --- verdicts: NG at score >= threshold instead of > (one rule: core/verdict.py)
    Mutation("verdict >= in is_ng / verdict", "patchcore_gui/core/verdict.py",
             "return bool(float(score) > float(threshold))", "return bool(float(score) >= float(threshold))",
             ("tests/core/test_verdict.py", "tests/core/test_verdict_boundary.py",
              "tests/reports/test_report_boundary.py", _QT_BOUNDARY)),
    Mutation("verdict >= in ng_mask (counts, filters, metrics)", "patchcore_gui/core/verdict.py",
             "return np.greater(s, float(threshold))", "return np.greater_equal(s, float(threshold))",
             ("tests/core/test_verdict.py", "tests/core/test_metrics.py", _QT_BOUNDARY)),
    Mutation("verdict >= in count_ng (the metrics panel)", "patchcore_gui/core/verdict.py",
             'np.searchsorted(s, float(threshold), side="right")', 'np.searchsorted(s, float(threshold), side="left")',
             ("tests/core/test_verdict.py", _QT_BOUNDARY)),
    # --- the review band's lower edge: a score equal to review_from is OK
    Mutation("review band >= review_from in is_review", "patchcore_gui/core/verdict.py",
             "return bool(s > float(review_from)) and bool(s <= float(threshold))",
             "return bool(s >= float(review_from)) and bool(s <= float(threshold))",
             ("tests/core/test_review_band.py",)),
    Mutation("review band >= review_from in review_mask (filters, CSV, reports)", "patchcore_gui/core/verdict.py",
             "return np.greater(s, float(review_from)) & np.less_equal(s, float(threshold))",
             "return np.greater_equal(s, float(review_from)) & np.less_equal(s, float(threshold))",
             ("tests/core/test_review_band.py",)),
    Mutation("review band start counted with side='left' in count_review", "patchcore_gui/core/verdict.py",
             'upto_rf = min(end, int(np.searchsorted(s, rf, side="right")))',
             'upto_rf = min(end, int(np.searchsorted(s, rf, side="left")))',
             ("tests/core/test_review_band.py",)),
    # --- calibration, banks, import
    Mutation("calibration rule with 1 std", "patchcore_gui/core/calibration.py",
             "v.mean() + 3.0 * v.std(", "v.mean() + 1.0 * v.std(",
             (_GUARDS,)),
    Mutation("final bank without the last training image", "patchcore_gui/core/engine.py",
             "    flat = feats.reshape(n_img * per_img, dim)\n",
             "    flat = feats[: n_img - 1].reshape(-1, dim)\n",
             (_TRAINING,)),
    Mutation("own rows not excluded when a training image is scored for calibration",
             "patchcore_gui/core/out_of_bank.py",
             "own = owner == i", "own = owner < 0",
             (_TRAINING,)),
    Mutation("false-reject quantile with numpy's default (linear) positions", "patchcore_gui/core/calibration.py",
             'np.quantile(v, 1.0 - r, method="weibull")', "np.quantile(v, 1.0 - r)",
             ("tests/core/test_calibration_rate.py",)),
    Mutation("log-normal extrapolation at z(rate) instead of z(1 - rate)", "patchcore_gui/core/calibration.py",
             "NormalDist().inv_cdf(1.0 - r)", "NormalDist().inv_cdf(r)",
             ("tests/core/test_calibration_rate.py",)),
    Mutation("bank_source image and patch swapped", "patchcore_gui/core/provenance.py",
             "np.stack([sel // per_image, sel % per_image], axis=1)",
             "np.stack([sel % per_image, sel // per_image], axis=1)",
             ("tests/core/test_provenance.py",)),
    Mutation("import-official ignores anomaly_scorer_num_nn", "patchcore_gui/core/official_import.py",
             "        k=k,\n", "        k=1,\n",
             (_TRAINING,)),
    Mutation("ImageNet mean reversed", "patchcore_gui/core/preprocess.py",
             "IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)",
             "IMAGENET_MEAN: tuple[float, float, float] = (0.406, 0.456, 0.485)",
             (_GUARDS,)),
    # --- coreset: initial distance = MEAN distance to the start rows
    Mutation("coreset initial distance: max", "patchcore_gui/core/coreset.py",
             "return d2.sqrt_().mean(dim=1).square_()", "return d2.sqrt_().amax(dim=1).square_()",
             (_GUARDS,)),
    Mutation("coreset initial distance: min", "patchcore_gui/core/coreset.py",
             "return d2.sqrt_().mean(dim=1).square_()", "return d2.sqrt_().amin(dim=1).square_()",
             (_GUARDS,)),
    # --- the official BatchNorm warm-up skipped
    Mutation("BatchNorm warm-up skipped", "patchcore_gui/core/backbones.py",
             "    param = next(extractor.parameters())\n    extractor.train()\n",
             "    return\n    param = next(extractor.parameters())\n    extractor.train()\n",
             ("tests/core/test_bn_warmup.py", "tests/core/test_parity.py", "tests/core/test_official_import.py")),
    # --- image decoding (the fuzz tests compare with plain PIL)
    Mutation("EXIF orientation ignored", "patchcore_gui/io/images.py",
             "img = ImageOps.exif_transpose(img) or img", "img = img",
             ("tests/core/test_fuzz.py", "-k", "not model")),
]


def tree_files(root: Path) -> list[str]:
    """Tracked and untracked-not-ignored files of the working tree, as they are now."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         check=True, capture_output=True).stdout
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p and (root / p).is_file()]


def copy_tree(root: Path, files: list[str], dest: Path) -> None:
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)


def apply(m: Mutation, copy: Path) -> None:
    """Replace ``m.old`` by ``m.new`` in the copy; the snippet must occur exactly once."""
    path = copy / m.file
    text = path.read_text(encoding="utf-8")
    n = text.count(m.old)
    if n != 1:
        raise SystemExit(f"mutation {m.name!r}: the snippet occurs {n} times in {m.file} (must be once): "
                         f"{m.old!r}; update scripts/mutation_check.py")
    path.write_text(text.replace(m.old, m.new), encoding="utf-8")


def environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no stale .pyc can outlive a mutation
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def imported_from(python: str, copy: Path) -> str:
    """Where ``import patchcore_gui`` resolves with the copy's environment."""
    return subprocess.run([python, "-c", "import patchcore_gui; print(patchcore_gui.__file__)"], cwd=copy,
                          env=environment(copy), check=True, capture_output=True, text=True).stdout.strip()


def run_tests(python: str, copy: Path, tests: tuple[str, ...], timeout: int) -> tuple[int | None, str]:
    """(pytest exit code or None on timeout, the first failing test or the last output line)."""
    cmd = [python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        proc = subprocess.run(cmd, cwd=copy, env=environment(copy), capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    failed = [ln for ln in lines if ln.startswith(("FAILED ", "ERROR "))]
    return proc.returncode, (failed[0] if failed else (lines[-1] if lines else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", default=None, metavar="TEXT", help="mutations whose name contains TEXT")
    ap.add_argument("--list", action="store_true", help="list the mutations, their tests and whether each snippet still matches")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run (faster, proves less)")
    ap.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per pytest run")
    a = ap.parse_args()
    chosen = [m for m in MUTATIONS if not a.only or any(t.lower() in m.name.lower() for t in a.only)]
    if a.list or not chosen:
        # Also a cheap way to re-check every snippet after the code moved.
        stale = 0
        for m in chosen:
            n = (ROOT / m.file).read_text(encoding="utf-8").count(m.old)
            stale += n != 1
            state = "ok" if n == 1 else f"SNIPPET FOUND {n} TIMES"
            print(f"{m.name:<50} {state:<8} {m.file}  ->  {' '.join(m.tests)}")
        return 2 if not chosen else (1 if stale else 0)
    for m in chosen:  # every snippet must still match before anything runs
        text = (ROOT / m.file).read_text(encoding="utf-8")
        if text.count(m.old) != 1:
            print(f"mutation {m.name!r}: snippet found {text.count(m.old)} times in {m.file}: {m.old!r}",
                  file=sys.stderr)
            return 1
        for t in m.tests:
            if t.startswith("tests/") and not (ROOT / t.split("::")[0]).is_file():
                print(f"mutation {m.name!r}: test file {t} does not exist", file=sys.stderr)
                return 1
    files = tree_files(ROOT)
    results: list[tuple[str, str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="mutation-check-") as tmp:
        if not a.no_baseline:
            base = Path(tmp) / "baseline"
            copy_tree(ROOT, files, base)
            where = imported_from(a.python, base)
            print(f"patchcore_gui imported from {where}")
            if not where.startswith(str(base)):
                print("the copy's code is not the one imported; PYTHONPATH is shadowed", file=sys.stderr)
                return 1
            union = sorted({t for m in chosen for t in m.tests if t.startswith("tests/")})
            t0 = time.perf_counter()
            rc, line = run_tests(a.python, base, tuple(union), a.timeout * 3)
            print(f"baseline (unmutated) on {len(union)} test files: exit {rc} in {time.perf_counter() - t0:.0f} s")
            if rc != 0:
                print(f"the unmutated tests do not pass ({line}); fix that first", file=sys.stderr)
                return 1
            shutil.rmtree(base)
        for i, m in enumerate(chosen):
            copy = Path(tmp) / f"m{i:02d}"
            copy_tree(ROOT, files, copy)
            apply(m, copy)
            if i == 0 and a.no_baseline:
                where = imported_from(a.python, copy)
                print(f"patchcore_gui imported from {where}")
                if not where.startswith(str(copy)):
                    print("the copy's code is not the one imported; PYTHONPATH is shadowed", file=sys.stderr)
                    return 1
            t0 = time.perf_counter()
            rc, line = run_tests(a.python, copy, m.tests, a.timeout)
            secs = time.perf_counter() - t0
            outcome = {1: "killed", 0: "SURVIVED"}.get(rc, f"ERROR (exit {rc})") if rc is not None else "ERROR (timeout)"
            if outcome == "killed" and line.startswith("ERROR "):
                # A setup error (a NameError in a stale snippet, say) is no test catching the bug.
                outcome = "ERROR (not a test failure)"
            results.append((m.name, outcome, secs, line))
            print(f"[{i + 1}/{len(chosen)}] {m.name}: {outcome} in {secs:.0f} s  {line}", flush=True)
            shutil.rmtree(copy)
    print(f"\n{'mutation':<50} {'outcome':<18} {'s':>5}  caught by")
    for name, outcome, secs, line in results:
        print(f"{name:<50} {outcome:<18} {secs:5.0f}  {line[:110]}")
    bad = [r for r in results if r[1] != "killed"]
    print(f"\n{len(results) - len(bad)} of {len(results)} mutations killed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
