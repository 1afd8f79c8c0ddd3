"""examples/benchmark_kitchen20.py on a tiny features cache in its format: jobs, screening
runs on inner folds (--unread, --param) and the report."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from skattloc import LogMelExtractor, make_weak_events

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "benchmark_kitchen20.py"


def _cache(path, n_clips=40):
    audio, Y, _ = make_weak_events(n_clips=n_clips, n_classes=3, duration=1.0, random_state=0)
    Y = np.eye(3, dtype=np.int8)[np.arange(n_clips) % 3]  # one tag per clip, as kitchen20
    X = [np.asarray(x, dtype=np.float16) for x in LogMelExtractor().fit_transform(audio)]
    np.savez_compressed(path, X=np.concatenate(X), lengths=np.array([len(x) for x in X]), Y=Y,
                        classes=np.array(["a", "b", "c"]), folds=np.array([i % 4 + 1 for i in range(n_clips)], dtype=np.int8))


def _run(args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600,
                          cwd=ROOT)


def test_screening_jobs_read_no_unread_fold_and_stay_out_of_the_report(tmp_path, monkeypatch):
    cache, res = tmp_path / "k.npz", tmp_path / "res.jsonl"
    _cache(cache)
    tiny = ["--param", "max_epochs=1", "--param", "rnn_hidden=8", "--param", "rnn_layers=1", "--param", "dense_units=8",
            "--param", "n_filters=8", "--param", "validation_fraction=0.0"]
    proc = _run(["--features-cache", str(cache), "--results", str(res), "--jobs", "default:3:0", "--unread", "4", *tiny])
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(res.read_text())
    assert row["unread"] == [4] and row["params"]["max_epochs"] == 1 and row["n_epochs"] == 1
    assert row["batch_size"] == 8  # batch_size="auto" on folds 1-2 (20 clips): at least 8
    assert 0 <= row["accuracy"] <= 1
    proc = _run(["--features-cache", str(cache), "--results", str(res), "--jobs", "default:4:0", "--unread", "4", *tiny])
    assert proc.returncode != 0 and "--unread lists it" in proc.stderr
    proc = _run(["--features-cache", str(cache), "--results", str(res), "--jobs", "logreg:3:0", "--unread", "4,1"])
    assert proc.returncode != 0 and "at least 2 training folds" in proc.stderr
    proc = _run(["--features-cache", str(cache), "--results", str(res), "--jobs", "gmm:1:0"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    # a cross-validation row of the default system run with other parameters: a row of its own
    with open(res, "a") as fh:
        fh.write(json.dumps({"job": "default:2:0", "system": "default", "fold": 2, "seed": 0, "fit_min": 1.0,
                             "accuracy": 0.5, "eer": 0.2, "n_epochs": 3, "batch_size": 100,
                             "params": {"batch_size": 100}}) + "\n")
    # the report (written under tmp_path, not docs/) leaves the screening row out
    sys.path.insert(0, str(SCRIPT.parent))
    import benchmark_kitchen20 as k20

    monkeypatch.setattr(k20, "DOCS", tmp_path)
    k20.report(str(res))
    text = (tmp_path / "kitchen20.md").read_text()
    assert "| gmm | 1 | 1 |" in text and "| default (batch_size=100) | 1 | 2 | 0.500 | 0.200 |" in text
    assert "| default | 0 | – | not run |" in text and "| logreg | 0 | – | not run |" in text
    assert [r["job"] for r in json.loads((tmp_path / "kitchen20.json").read_text())] == ["gmm:1:0", "default:2:0",
                                                                                       "default:3:0"]
    assert "## Screening on inner folds" in text and "| default | dense_units=8, max_epochs=1, n_filters=8, rnn_hidden=8" in text
