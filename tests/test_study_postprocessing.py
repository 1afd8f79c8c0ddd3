"""examples/benchmark_labels.py --save-models and examples/study_postprocessing.py end to end,
on a tiny features cache in the scripts' format."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from skattloc import LogMelExtractor, make_weak_events

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TINY = ["--clip-duration", "1.0", "--max-epochs", "2", "--param", "rnn_hidden=8", "--param", "rnn_layers=1", "--param", "dense_units=8",
        "--param", "n_filters=8", "--param", "batch_size=8", "--param", "validation_fraction=0.25"]


def _cache(path, n_clips=48):
    audio, Y, events = make_weak_events(n_clips=n_clips, n_classes=3, duration=1.0, random_state=0)
    X = np.asarray(LogMelExtractor().fit_transform(audio), dtype=np.float16)
    names = [f"clip_{i:03d}.wav" for i in range(n_clips)]
    np.savez_compressed(path, X=X, Y=np.asarray(Y, dtype=np.int8), classes=np.array(["tone", "chirp", "noise_burst"]),
                        folds=np.array([i % 4 + 1 for i in range(n_clips)], dtype=np.int8), filenames=np.array(names),
                        strong_file=np.array([names[e[0]] for e in events]),
                        strong_onset=np.array([e[1] for e in events]), strong_offset=np.array([e[2] for e in events]),
                        strong_label=np.array([e[3] for e in events]))


def _run(script, args):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_saved_models_are_screened_and_rescored_without_a_refit(tmp_path):
    cache, models = tmp_path / "feats.npz", tmp_path / "models"
    _cache(cache)
    # a screening model (folds 1-2 -> fold 3, fold 4 unread) and a fold-4 model, saved
    _run("benchmark_labels.py", ["--features-cache", str(cache), "--results", str(tmp_path / "s.jsonl"),
                                 "--scored-fold", "3", "--unread", "4", "--save-models", str(models),
                                 "--jobs", "timed:0:0", *TINY])
    _run("benchmark_labels.py", ["--features-cache", str(cache), "--results", str(tmp_path / "c.jsonl"),
                                 "--save-models", str(models), "--jobs", "timed:0:0", *TINY])
    assert sorted(p.name for p in models.iterdir()) == ["timed_0_0_fold3.skattloc", "timed_0_0_fold4.skattloc"]

    screen, rescore = tmp_path / "screen.json", tmp_path / "rescore.json"
    out = _run("study_postprocessing.py", ["--features-cache", str(cache), "--screen", str(models / "timed_0_0_fold3.skattloc"),
                                          "--variants", "previous,default,thr0.5", "--clip-duration", "1.0", "--out", str(screen)])
    assert "previous" in out and "thr0.5" in out
    res = json.loads(screen.read_text())["screen"][str(models / "timed_0_0_fold3.skattloc")]
    assert set(res) == {"previous", "default", "thr0.5"}
    for row in res.values():  # a 2-epoch model may detect nothing: F1 is then NaN, never out of range
        for f in (row["own_val"]["event_f1"], row["halves"]["event_f1"], row["own_val"]["segment_f1"]):
            assert np.isnan(f) or 0 <= f <= 1
        assert set(row["own_val"]["per_class"]) == {"tone", "chirp", "noise_burst"}
    # the variants differ only in the thresholds: threshold_scale as asked, the rest equal
    prev, half = res["previous"]["settings"], res["thr0.5"]["settings"]
    calibrated = np.isfinite([prev["info"]["typical_event_length_s"][c] for c in prev["classes"]])
    assert calibrated.any()  # a class never (or always) tagged in the small split keeps 0.5 in both
    scale = np.where(calibrated, 0.5, 1.0)
    assert np.allclose(np.asarray(half["threshold"]), scale * np.asarray(prev["threshold"]))
    assert half["median_filter"] == prev["median_filter"] and half["min_gap"] == prev["min_gap"]
    # the frame scores were cached next to the model: no second forward pass
    assert (models / "timed_0_0_fold3.skattloc.scores.npz").is_file()

    _run("study_postprocessing.py", ["--features-cache", str(cache), "--rescore", str(models / "timed_0_0_fold4.skattloc"),
                                    "--variants", "previous,default", "--clip-duration", "1.0", "--out", str(rescore)])
    rows = json.loads(rescore.read_text())["rescore"]
    assert set(rows) == {"previous", "default"} and len(rows["default"]["per_model"]) == 1

    page = tmp_path / "screening.md"
    page.write_text("# Screening\n\nkept text\n")
    for _ in range(2):  # a second report replaces its block
        _run("study_postprocessing.py", ["--features-cache", str(cache), "--report", f"{screen},{rescore}",
                                        "--out-md", str(page)])
    text = page.read_text()
    assert text.startswith("# Screening\n\nkept text") and text.count("<!-- postprocessing-study:start -->") == 1
    assert "| thr0.5 | threshold_scale=0.5 |" in text and "| default | 1 |" in text
