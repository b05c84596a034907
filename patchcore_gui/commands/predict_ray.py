"""``patchcore predict --engine ray``: the options, and the glue between them and core/ray_engine.

The local engine stays the default and the code path it always was; with
``--engine ray`` the same command scores through a :class:`~patchcore_gui.core.ray_engine.RayScorer`
(a local Ray instance started inside the command, or ``--ray-address``), writing the
same CSV, run file and maps. The driver loads the model on its CPU only to describe the
run (summary, thresholds, maps); the workers score.

``--images`` is a local folder or a URI any of pyarrow's file systems read (``s3://``,
``gs://``, ``hdfs://``, ``file://``...; ``core/uri_listing.py``), with either engine:
the local engine fetches a URI listing's images a batch at a time
(``core/uri_scoring.py``), the Ray replicas each fetch their own.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .common import CliError, positive_int

if TYPE_CHECKING:
    from ..core.datasets import ImageSet

ENGINES = ("local", "ray")


def non_negative_float(text: str) -> float:
    """argparse type: a float >= 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def add_engine_options(pr: argparse.ArgumentParser) -> None:
    """--engine, --ray-address, --workers, --gpus-per-worker and --cpus-per-worker of ``predict``."""
    pr.add_argument("--engine", choices=ENGINES, default="local",
                    help="local (default): this process; ray: model replicas on a Ray cluster "
                         "(a local instance unless --ray-address)")
    pr.add_argument("--ray-address", default=None, metavar="ADDRESS",
                    help="an existing Ray cluster (host:port of its head, ray://host:port or auto); "
                         "without it a local Ray instance starts and stops with the command")
    pr.add_argument("--workers", type=positive_int, default=None, metavar="N",
                    help="model replicas (Ray actors, 1 CPU each; default: a local instance's CPUs - 1, the "
                         "driver scoring on the last one (one per CPU with --no-driver-scoring); a cluster's "
                         "CPUs - 1; at least 1)")
    pr.add_argument("--gpus-per-worker", type=non_negative_float, default=0.0, metavar="F",
                    help="GPUs each replica reserves (e.g. 1, or 0.5 to put two on one GPU; default 0: CPU)")
    pr.add_argument("--cpus-per-worker", type=positive_int, default=None, metavar="N",
                    help="CPUs each replica reserves and runs torch on (default 1; --workers 1 on a "
                         "local instance uses every core). Scores are bit-identical to a local run with "
                         "the same torch thread count, within 1e-6 otherwise")
    pr.add_argument("--no-driver-scoring", action="store_true",
                    help="on a local Ray instance, leave all scoring to the replicas (by default this "
                         "process scores too, from the last images back, while they start)")


def is_ray(args: argparse.Namespace) -> bool:
    """True when ``args`` ask for the Ray engine (commands that build their own Namespace: no)."""
    return getattr(args, "engine", "local") == "ray"


def check_engine_options(args: argparse.Namespace) -> None:
    """Refuse Ray options without ``--engine ray`` (they would silently do nothing)."""
    if is_ray(args):
        return
    given = [name for name, default in (("--ray-address", None), ("--workers", None), ("--gpus-per-worker", 0.0),
                                        ("--cpus-per-worker", None), ("--no-driver-scoring", False))
             if getattr(args, name[2:].replace("-", "_"), default) != default]
    if given:
        raise CliError(f"{', '.join(given)} only apply with --engine ray")


def worker_device(args: argparse.Namespace) -> str:
    """The device the replicas score on: --device if given, else a GPU when they reserve one."""
    if args.device and args.device != "auto":
        return str(args.device)
    return "cuda" if getattr(args, "gpus_per_worker", 0.0) > 0 else "cpu"


def driver_model_args(args: argparse.Namespace, resume: bool) -> tuple[str, str | None]:
    """(device, precision) to load the driver's copy of the model with.

    The driver only describes the run, so it loads on its CPU; the precision is resolved
    for the workers' device ("auto" is fast on CUDA), except on resume, where "auto"
    means the run's own precision.
    """
    precision = getattr(args, "precision", "auto")
    if precision == "auto" and not resume:
        precision = "fast" if worker_device(args).startswith("cuda") else "exact"
    return "cpu", precision


def list_images_for(images: str) -> ImageSet:
    """The images ``predict --images`` names: a local folder (with the ground truth its layout
    gives) or a URI's folder (no ground truth: a note says so when it looks labelled)."""
    from ..core.datasets import list_images_with_truth
    from ..core.uri_listing import is_uri, list_uri_images

    if not is_uri(images):
        return list_images_with_truth(images)
    try:
        image_set, labelled = list_uri_images(images)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:
        raise CliError(f"cannot list {images}: {exc}") from None
    if labelled:
        print("note: ground truth from folder layouts (test/good, test/<defect>) is read from local folders "
              "only; these images are scored without labels", file=sys.stderr)
    return image_set


@contextlib.contextmanager
def engine_kwargs(args: argparse.Namespace,
                  prepare: Callable[[], tuple[Any, ImageSet | None]] | None = None) -> Iterator[dict[str, Any]]:
    """Keyword arguments for ``predict_into_run`` / ``score_images``, and ``prepared``: what
    ``prepare()`` returned, (model, image set or None on resume); pop it before passing the
    rest on.

    Local engine: its scorer, ``iter_predict`` itself for local paths, reading URIs a
    batch at a time (``uri_scoring.uri_iter_predict``). Ray: a connected scorer (Ray
    started or joined for the block, stopped after), the workers' device and the
    settings a run file records. ``prepare`` (the driver's model load and listing) runs
    in a helper thread while Ray starts in this one: a local instance takes seconds to
    start, mostly waiting for its processes, and must start from the main thread (its
    processes are tied to the thread that started them). On a local instance whose
    driver scores (``core/ray_lead_in.py``), ``prepare`` runs first and the driver starts
    scoring a new run's images from the last batch back while Ray starts. An error of
    ``prepare`` is raised here (after Ray stopped again, when it ran beside Ray).
    """
    if not is_ray(args):
        from ..core.uri_scoring import uri_iter_predict

        yield {"scorer": uri_iter_predict, "prepared": prepare() if prepare is not None else None}
        return
    from ..core.ray_engine import RayEngineError, RayOptions, discard_lead_in, ray_scorer

    options = RayOptions(address=args.ray_address, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                         cpus_per_worker=float(args.cpus_per_worker or 1), threads=args.cpus_per_worker,
                         driver_scores=not getattr(args, "no_driver_scoring", False))
    device = worker_device(args)
    try:
        lead_threads = _lead_in_threads(options, device)
    except RayEngineError as exc:
        raise CliError(str(exc)) from None

    def prepare_and_lead() -> tuple[Any, Any]:
        prepared = prepare() if prepare is not None else None
        lead = None
        if lead_threads and prepared is not None and prepared[1] is not None:
            lead = _early_lead_in(args, *prepared, threads=lead_threads)
        return prepared, lead

    adopted = False
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict-prepare") as pool:
        pending = pool.submit(prepare_and_lead)
        try:
            if lead_threads:
                # The driver scores: its model first, then Ray starts beside its scoring.
                # Loaded beside `import ray` and ray.init, the model took 2.6 s instead of
                # 0.65 s (both hold the GIL), and the driver began scoring 2 s later.
                pending.result()
            with ray_scorer(options, device) as scorer:
                prepared, scorer.early = pending.result()
                adopted = True  # the scorer stops the lead-in now, used or not
                plan = scorer.plan
                yield {
                    "scorer": scorer,
                    "device": device,
                    "extra_settings": {"engine": "ray", "workers": plan.workers,
                                       "cpus_per_worker": plan.cpus_per_worker, "threads_per_worker": plan.threads,
                                       "gpus_per_worker": plan.gpus_per_worker,
                                       "ray_address": args.ray_address or "local",
                                       "driver_scores": scorer.driver_threads is not None},
                    "prepared": prepared,
                }
        except RayEngineError as exc:
            raise CliError(str(exc)) from None
        finally:
            if not adopted and pending.exception() is None:  # Ray did not start: stop the lead-in
                discard_lead_in(pending.result()[1])


def _lead_in_threads(options: Any, device: str) -> int | None:
    """The driver's torch threads while it scores beside a local instance's replicas (theirs);
    None when it does not score (a cluster, GPU replicas, ``--no-driver-scoring``)."""
    from ..core.ray_cluster import local_plan
    from ..core.ray_engine import driver_scores

    return local_plan(options, driver=True).threads if driver_scores(options, device) else None


def _early_lead_in(args: argparse.Namespace, model: Any, image_set: ImageSet, *, threads: int) -> Any:
    """The driver's lead-in over a new run's images, started (None: nothing to score). Cut
    as the run will be: the run's batch size, the CLI's float32 grids; the scorer checks."""
    import numpy as np

    from ..core.batching import default_batch_size
    from ..core.ray_engine import lead_in

    lead = lead_in(model, image_set, batch_size=args.batch_size or default_batch_size(model),
                   grid_dtype=np.float32, threads=threads)
    return lead.start() if lead is not None else None
