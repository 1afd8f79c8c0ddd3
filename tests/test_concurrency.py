"""Concurrency and resources (issue 5): GridSearchCV(n_jobs=2) and LogMelExtractor(n_jobs=2)
finish (no deadlock: each runs in a subprocess with a timeout) without oversubscribing
threads (each worker's torch/BLAS thread pools are measured while it works)."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

TIMEOUT_S = 300


def _run(code, tmp_path):
    out = tmp_path / "out.json"
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(out)],
                              capture_output=True, timeout=TIMEOUT_S, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not finish within {TIMEOUT_S} s: deadlock or runaway oversubscription")
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return json.loads(out.read_text())


GRID = """
import json, sys
import joblib, numpy as np, torch
from threadpoolctl import threadpool_info
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from skattloc import AttLocTagger, LogMelExtractor, make_weak_events
from skattloc.metrics import eer_scorer

def torch_threads(est, X, y):  # runs in the worker that fitted est
    return float(torch.get_num_threads())

def blas_threads(est, X, y):
    return float(max([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] or [1]))

audio, Y, _ = make_weak_events(n_clips=16, n_classes=2, duration=0.5, random_state=0)
pipe = make_pipeline(
    LogMelExtractor(n_jobs=2),  # nested: threads inside each process worker
    AttLocTagger(n_filters=4, kernel_size=20, rnn_hidden=4, rnn_layers=1, dense_units=4,
                 batch_size=8, max_epochs=1, random_state=0),
)
search = GridSearchCV(pipe, {"attloctagger__rnn_hidden": [4, 6]}, cv=2, n_jobs=2, refit="eer",
                      scoring={"eer": eer_scorer, "torch": torch_threads, "blas": blas_threads}).fit(audio, Y)
res = search.cv_results_
json.dump({
    "cpus": joblib.cpu_count(),
    "torch": [res[f"split{k}_test_torch"].tolist() for k in range(2)],
    "blas": [res[f"split{k}_test_blas"].tolist() for k in range(2)],
    "eer": res["mean_test_eer"].tolist(),
    "best": search.best_params_["attloctagger__rnn_hidden"],
}, open(sys.argv[1], "w"))
"""


@pytest.mark.slow  # two loky workers each import torch and Lightning: ~60 s on 2 busy cores
def test_grid_search_with_two_jobs_finishes_without_oversubscription(tmp_path):
    r = _run(GRID, tmp_path)
    per_worker = max(1, r["cpus"] // 2)  # joblib's loky limit for n_jobs=2
    threads = [t for split in r["torch"] for t in split]
    assert len(threads) == 4 and all(t <= per_worker for t in threads), r
    assert all(t <= per_worker for split in r["blas"] for t in split), r
    assert all(-1 <= s <= 0 for s in r["eer"]) and r["best"] in (4, 6)


EXTRACT = """
import json, sys, threading
import numpy as np
from threadpoolctl import threadpool_info
import skattloc.features as F

seen = []
real = F._logmel

def probe(*args, **kwargs):  # the BLAS pool size while a worker thread computes a clip
    seen.append((threading.get_ident(), max([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] or [1])))
    return real(*args, **kwargs)

def blas_now():
    return max([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] or [1])

F._logmel = probe
before = blas_now()
clips = np.random.default_rng(0).normal(0, 0.1, (16, 16000)).astype(np.float32)
ext = F.LogMelExtractor(n_jobs=2)
out = ext.transform(clips)
one = F.LogMelExtractor(n_jobs=1).transform(clips)
json.dump({
    "shape": list(out.shape),
    "same_as_serial": bool(np.array_equal(out, one)),
    "blas_in_workers": [b for _, b in seen[:16]],
    "threads_used": len({t for t, _ in seen[:16]}),
    "blas_before": before,
    "blas_after": blas_now(),
    "blas_serial": [b for _, b in seen[16:]],
}, open(sys.argv[1], "w"))
"""


def test_logmel_extractor_with_two_jobs_finishes_with_one_blas_thread_per_worker(tmp_path):
    r = _run(EXTRACT, tmp_path)
    assert r["shape"] == [16, 61, 40] and r["same_as_serial"]
    assert r["blas_in_workers"] == [1] * 16  # 2 threads x 1 BLAS thread, not 2 x n_cores
    assert r["blas_serial"] == [1] * 16  # and serially, so the features never depend on n_jobs
    assert r["blas_after"] == r["blas_before"]  # the limit is lifted afterwards
