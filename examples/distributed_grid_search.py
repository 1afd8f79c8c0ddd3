"""Hyperparameter search across machines: GridSearchCV on a Dask cluster through joblib.

scikit-learn's ``GridSearchCV`` runs its fits through joblib; joblib's ``"dask"`` backend
sends each fit (one parameter setting on one fold) to a worker of a Dask
``distributed`` cluster. Nothing in skattloc changes: the estimator, its data and the
:data:`~skattloc.metrics.eer_scorer` are pickled to the workers.

Threads: each worker runs ``threads_per_worker`` fits at once, and each fit's PyTorch
must then use ``cores / threads_per_worker`` threads, not every core of the machine.
This script sets ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` in the
environment of the worker processes it starts (read by torch and BLAS at import), and
also registers a worker plugin that sets ``torch.set_num_threads`` and the BLAS limits
(threadpoolctl) on every worker, which also covers workers started elsewhere. It prints
the thread count each worker reports.

Run it
------
A local cluster of 2 single-threaded worker processes (the default)::

    python examples/distributed_grid_search.py

On a real cluster, start a scheduler and workers (one process per worker, N threads
each, the environment set so that torch uses ``cores / N`` threads)::

    dask scheduler                                     # on one node: tcp://HOST:8786
    OMP_NUM_THREADS=4 dask worker tcp://HOST:8786 --nworkers 4 --nthreads 1   # on each 16-core node

and point this script at the scheduler; with ``--store`` the features live in a
:class:`~skattloc.store.FeatureStore` on a shared file system, so only its path travels
to the workers (otherwise the arrays are scattered to the workers once)::

    python examples/distributed_grid_search.py --scheduler tcp://HOST:8786 --store /shared/feats

Needs ``dask[distributed]`` (``pip install "dask[distributed]"``).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
from collections import Counter

from distributed import WorkerPlugin

SMALL = dict(n_filters=32, rnn_hidden=16, rnn_layers=1, dense_units=32, batch_size=32, max_epochs=3)


class LimitThreads(WorkerPlugin):
    """Dask worker plugin: each fit on a worker uses ``n_threads`` torch/BLAS threads.

    Runs in the worker process (not in skattloc): the library itself never changes
    torch's global thread count.
    """

    def __init__(self, n_threads: int):
        self.n_threads = int(n_threads)

    def setup(self, worker=None):
        import torch
        from threadpoolctl import threadpool_limits

        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(self.n_threads)
        torch.set_num_threads(self.n_threads)
        threadpool_limits(self.n_threads)

    def teardown(self, worker=None):
        pass


def start_local_cluster(n_workers: int = 2, threads_per_worker: int = 1, cores_per_worker: int = 1):
    """A ``LocalCluster`` of worker processes whose torch/BLAS use ``cores_per_worker // threads_per_worker`` threads."""
    import dask
    from distributed import Client, LocalCluster

    inner = max(1, cores_per_worker // threads_per_worker)
    env = {"OMP_NUM_THREADS": inner, "MKL_NUM_THREADS": inner, "OPENBLAS_NUM_THREADS": inner}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    client = Client(cluster)
    client.register_plugin(LimitThreads(inner), name="skattloc-limit-threads")
    return cluster, client


def worker_threads(client) -> dict:
    """``{worker address: (dask threads, torch threads)}``."""

    def probe(dask_worker=None):
        import torch

        return dask_worker.state.nthreads, torch.get_num_threads()

    return client.run(probe)


def grid_search(client, X, Y, param_grid, *, cv=3, base_params=None, scatter=True, random_state=0):
    """Fit ``GridSearchCV`` on the cluster behind ``client``; return it and task counts per worker.

    Parameters
    ----------
    client : distributed.Client
    X : clips (array, list or :class:`~skattloc.store.FeatureStore`), Y : (n_clips, n_classes)
    param_grid : dict
        :class:`~skattloc.AttLocTagger` parameters to search.
    cv : int, default=3
    base_params : dict, optional
        Fixed estimator parameters (default: a small network, see ``SMALL``).
    scatter : bool, default=True
        Send ``X`` and ``Y`` to the workers once up front (for in-memory data). Not
        needed for a FeatureStore, which pickles to its path.

    Returns
    -------
    search : GridSearchCV
    tasks : collections.Counter
        Tasks run by each worker address.
    """
    import joblib
    from distributed import get_task_stream
    from sklearn.model_selection import GridSearchCV

    from skattloc import AttLocTagger
    from skattloc.metrics import eer_scorer

    est = AttLocTagger(**(SMALL if base_params is None else base_params), random_state=random_state)
    search = GridSearchCV(est, param_grid, scoring=eer_scorer, cv=cv, n_jobs=-1, error_score="raise")
    backend = dict(scatter=[X, Y]) if scatter else {}
    with get_task_stream(client) as stream, joblib.parallel_config(backend="dask", **backend):
        search.fit(X, Y)
    tasks = Counter(t["worker"] for t in stream.data)
    return search, tasks


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scheduler", help="address of a running Dask scheduler (default: start a local cluster)")
    p.add_argument("--n-workers", type=int, default=2, help="local cluster: worker processes (default 2)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="local cluster: fits at once per worker (default 1)")
    p.add_argument("--cores-per-worker", type=int, default=1, help="local cluster: cores each worker may use (default 1)")
    p.add_argument("--n-clips", type=int, default=240, help="synthetic 2 s clips (default 240)")
    p.add_argument("--store", help="folder for a FeatureStore (must be on a file system every worker sees)")
    args = p.parse_args(argv)

    from distributed import Client

    from skattloc import LogMelExtractor, make_weak_events
    from skattloc.store import FeatureStore

    audio, Y, _ = make_weak_events(n_clips=args.n_clips, n_classes=3, duration=2.0, random_state=0)
    with contextlib.ExitStack() as stack:
        if args.store:
            X = FeatureStore.from_audio(args.store, audio, LogMelExtractor(), overwrite=True)
        else:
            X = LogMelExtractor().fit_transform(audio)
        if args.scheduler:
            client = stack.enter_context(Client(args.scheduler))
        else:
            cluster, client = start_local_cluster(args.n_workers, args.threads_per_worker, args.cores_per_worker)
            stack.callback(cluster.close)
            stack.callback(client.close)
        for addr, (dask_threads, torch_threads) in sorted(worker_threads(client).items()):
            print(f"worker {addr}: {dask_threads} dask thread(s), torch uses {torch_threads} thread(s)")
        grid = {"learning_rate": [1e-3, 3e-3], "rnn_hidden": [16, 32]}
        t0 = time.perf_counter()
        search, tasks = grid_search(client, X, Y, grid, cv=3, scatter=not args.store)
        wall = time.perf_counter() - t0
        print(f"{len(search.cv_results_['params'])} settings x 3 folds in {wall:.1f} s; tasks per worker: {dict(tasks)}")
        for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
            print(f"  {params}: mean EER {-score:.3f}")
        print(f"best: {search.best_params_} (EER {-search.best_score_:.3f})")


if __name__ == "__main__":
    main()
