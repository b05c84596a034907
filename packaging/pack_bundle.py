"""Finish the PyInstaller folder and pack it: ``python packaging/pack_bundle.py`` (``make bundle``).

1. Drops what the programs never load (``bundle_recipe.PRUNE``: headers, static
   libraries, CMake files that torch's hook collects).
2. Adds the install / uninstall scripts and the desktop entry, file types and icon.
3. Writes ``BUNDLE_INFO.txt``: version, the oldest glibc the libraries accept, the
   torch / CUDA build, and the sizes (whole folder, CUDA libraries).
4. Packs ``dist/patchcore-inspector-<version>-linux-x86_64.tar.gz`` whose top folder is
   ``patchcore-inspector-<version>/``, and prints the sizes.

Standard library only; runs with any Python 3.11 (the build venv's).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_GLIBC_RE = re.compile(rb"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?\x00")


def load_recipe():  # noqa: ANN201 - a module object
    spec = importlib.util.spec_from_file_location("bundle_recipe", ROOT / "packaging" / "bundle_recipe.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def tree_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (symlinks not followed, not counted twice)."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def elf_files(folder: Path) -> list[Path]:
    out = []
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(dirpath) / name
            if not p.is_symlink() and is_elf(p):
                out.append(p)
    return out


def glibc_min(files: list[Path]) -> str:
    """The newest ``GLIBC_x.y`` symbol version any library asks for: the oldest glibc that works."""
    best = (2, 0, 0)
    for p in files:
        data = p.read_bytes()
        for m in _GLIBC_RE.finditer(data):
            v = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
            best = max(best, v)
    return ".".join(str(x) for x in (best if best[2] else best[:2]))


def cuda_bytes(internal: Path) -> int:
    """The CUDA libraries: the nvidia-* wheels' folder and torch's / faiss's CUDA parts."""
    total = tree_bytes(internal / "nvidia") if (internal / "nvidia").is_dir() else 0
    torch_lib = internal / "torch" / "lib"
    cuda_named = re.compile(r"(cuda|nvrtc|nvshmem|cudnn|cublas|cufft|curand|cusparse|nccl|nvJitLink|cupti)", re.I)
    for folder in (torch_lib, internal):
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_file() and not p.is_symlink() and cuda_named.search(p.name):
                    total += p.stat().st_size
    return total


def prune(internal: Path, patterns: tuple[str, ...]) -> int:
    """Delete the paths matching ``patterns`` (globs relative to ``_internal``); returns bytes freed."""
    freed = 0
    for pattern in patterns:
        for p in sorted(internal.glob(pattern), reverse=True):
            if p.is_symlink() or p.is_file():
                freed += p.lstat().st_size
                p.unlink()
            elif p.is_dir():
                freed += tree_bytes(p)
                shutil.rmtree(p)
    return freed


def torch_build(site: Path) -> tuple[str, str]:
    """(torch version, CUDA version or 'none') from the build environment's torch/version.py."""
    text = (site / "torch" / "version.py").read_text()
    version = re.search(r"__version__\s*=\s*'([^']+)'", text)
    cuda = re.search(r"cuda\s*(?::\s*[^=]+)?=\s*'([^']+)'", text)
    return (version.group(1) if version else "?", cuda.group(1) if cuda else "none")


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dist", default=str(ROOT / "dist"), help="PyInstaller's output folder")
    # Level 1 by default to keep the build short; --gzip-level 9 gives a smaller archive.
    p.add_argument("--gzip-level", type=int, default=1, choices=range(1, 10), metavar="1-9")
    p.add_argument("--no-archive", action="store_true", help="finish the folder only")
    args = p.parse_args(argv)
    recipe = load_recipe()
    dist = Path(args.dist)
    bundle = dist / recipe.BUNDLE_NAME
    internal = bundle / "_internal"
    if not all((bundle / name).is_file() for name, _ in recipe.EXECUTABLES) or not internal.is_dir():
        print(f"pack_bundle: {bundle} is not a finished PyInstaller folder (run make bundle)", file=sys.stderr)
        return 1

    freed = prune(internal, recipe.PRUNE)
    for rel in recipe.TOP_LEVEL_FILES:
        src = ROOT / rel
        dest = bundle / (src.name if rel.endswith(".sh") else f"share/{src.name}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)

    version = project_version()
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    torch_version, cuda_version = torch_build(site)
    elves = elf_files(bundle)
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    # The package's own files as built: bundle-check compares scores with the .venv,
    # which runs the working tree, so it must know whether that tree has moved since.
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "patchcore_gui"], capture_output=True, text=True,
                           check=False).stdout.strip()
    info = {
        "name": "PatchCore Inspector",
        "version": version,
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": f"linux-{platform.machine()}",
        "python": platform.python_version(),
        "torch": torch_version,
        "torch_cuda": cuda_version,
        "glibc_min": glibc_min(elves),
        "source_commit": commit or "unknown",
        "source_dirty": "yes" if dirty else "no",
        "bytes_unpacked": str(tree_bytes(bundle)),
        "bytes_cuda_libraries": str(cuda_bytes(internal)),
        "bytes_pruned": str(freed),
    }
    (bundle / "BUNDLE_INFO.txt").write_text("".join(f"{k}={v}\n" for k, v in info.items()))
    print(f"bundle: {bundle}: {mib(int(info['bytes_unpacked']))} unpacked, of which CUDA libraries "
          f"{mib(int(info['bytes_cuda_libraries']))}; pruned {mib(freed)}; needs glibc >= {info['glibc_min']}")
    if args.no_archive:
        return 0

    top = f"{recipe.BUNDLE_NAME}-{version}"
    archive = dist / f"{top}-linux-{platform.machine()}.tar.gz"
    tmp = archive.with_name(archive.name + ".part")
    t0 = time.monotonic()
    with tmp.open("wb") as out:
        # flags=r: rename member names only, never symlink targets inside the bundle.
        tar = subprocess.Popen(["tar", "-C", str(dist), "--owner=0", "--group=0", "--numeric-owner",
                                f"--transform=flags=r;s,^{recipe.BUNDLE_NAME},{top},", "-cf", "-",
                                recipe.BUNDLE_NAME], stdout=subprocess.PIPE)
        gz = subprocess.run(["gzip", f"-{args.gzip_level}", "-n"], stdin=tar.stdout, stdout=out, check=False)
        tar.stdout.close()  # type: ignore[union-attr]
        if tar.wait() != 0 or gz.returncode != 0:
            tmp.unlink(missing_ok=True)
            print("pack_bundle: tar | gzip failed", file=sys.stderr)
            return 1
    tmp.replace(archive)
    print(f"archive: {archive}: {mib(archive.stat().st_size)} compressed "
          f"(gzip -{args.gzip_level}, {time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
