"""GridSearchCV fanned out to a local 2-worker Dask cluster (examples/distributed_grid_search.py)."""
import concurrent.futures
import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed", reason="dask[distributed] is not installed (test-only extra: pip install 'dask[distributed]')")

from skattloc.store import FeatureStore  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "distributed_grid_search.py"
TINY = dict(n_filters=4, rnn_hidden=4, rnn_layers=1, dense_units=4, batch_size=16, max_epochs=1)
TIMEOUT_S = 240


def _example():
    spec = importlib.util.spec_from_file_location("distributed_grid_search", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cluster_client():
    ex = _example()
    cluster, client = ex.start_local_cluster(n_workers=2, threads_per_worker=1, cores_per_worker=1)
    try:
        client.wait_for_workers(2, timeout=120)
        yield ex, client
    finally:
        client.close()
        cluster.close()


def test_workers_do_not_oversubscribe_cores(cluster_client):
    ex, client = cluster_client
    threads = ex.worker_threads(client)
    assert len(threads) == 2
    assert all(v == (1, 1) for v in threads.values()), threads  # 1 fit at a time, 1 torch thread


def test_grid_search_runs_on_both_workers_and_finishes(cluster_client, synth, tmp_path):
    ex, client = cluster_client
    X, Y = synth["X"][:24], synth["Y"][:24]
    store = FeatureStore.create(tmp_path / "feats", X)  # only its path travels to the workers
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(ex.grid_search, client, store, Y, {"learning_rate": [1e-3, 3e-3]}, cv=2, base_params=TINY, scatter=False)
        search, tasks = future.result(timeout=TIMEOUT_S)
    assert len(search.cv_results_["params"]) == 2
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and np.all((scores <= 0) & (scores >= -1))  # -EER
    assert set(tasks) == set(client.scheduler_info()["workers"]), f"tasks per worker: {dict(tasks)}"
    assert sum(tasks.values()) >= 4  # 2 settings x 2 folds, at least
    assert search.best_estimator_.predict_proba(store).shape == (24, 3)
