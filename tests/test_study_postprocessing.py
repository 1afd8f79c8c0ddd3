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


def test_benchmark_labels_runs_a_named_config_and_a_source_disjoint_validation_fold(tmp_path):
    cache = tmp_path / "feats.npz"
    _cache(cache)
    small = ["--param", "conv_channels=[4, 4, 8, 8, 8, 8, 8]", "--param", "rnn_hidden=8", "--param", "rnn_layers=1",
             "--param", "batch_size=8", "--clip-duration", "1.0", "--max-epochs", "2"]
    res = tmp_path / "desed.jsonl"
    _run("benchmark_labels.py", ["--features-cache", str(cache), "--results", str(res), "--config", "desed",
                                 "--jobs", "timed:0:0", *small])
    row = json.loads(res.read_text())
    assert row["config"] == "desed" and row["val_fold"] is None and row["max_epochs"] == 2
    assert 0 <= row["eer"] <= 1
    res = tmp_path / "valfold.jsonl"
    _run("benchmark_labels.py", ["--features-cache", str(cache), "--results", str(res), "--val-fold", "1",
                                 "--jobs", "timed:0:0", *TINY])
    row = json.loads(res.read_text())
    # 48 clips in 4 folds: folds 2-3 train (24 clips), fold 1 validates, fold 4 is scored
    assert row["val_fold"] == 1 and sum(row["label_counts"].values()) == 24
    proc = subprocess.run([sys.executable, str(EXAMPLES / "benchmark_labels.py"), "--features-cache", str(cache),
                           "--results", str(tmp_path / "x.jsonl"), "--val-fold", "4", "--jobs", "timed:0:0"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode != 0 and "must be a training fold" in proc.stderr


def test_compare_systems_pairs_the_bootstrap_draws_of_every_model(tmp_path):
    cache, models = tmp_path / "feats.npz", tmp_path / "models"
    _cache(cache)
    for name, extra in (("a", []), ("b", ["--param", 'pooling="mean"'])):
        _run("benchmark_labels.py", ["--features-cache", str(cache), "--results", str(tmp_path / f"{name}.jsonl"),
                                     "--save-models", str(models / name), "--jobs", "timed:0:0,timed:0:1", *TINY, *extra])
    page, out = tmp_path / "bench.md", tmp_path / "cmp.json"
    page.write_text("# Benchmarks\n\nkept\n")
    args = ["--features-cache", str(cache), "--system", f"a={models / 'a'}/*.skattloc", "--system",
            f"b={models / 'b'}/*.skattloc", "--bootstrap", "40", "--clip-duration", "1.0", "--out-json", str(out),
            "--out-md", str(page)]
    _run("compare_systems.py", args)
    res = json.loads(out.read_text())["systems"]
    assert list(res) == ["a", "b"] and res["a"]["n_models"] == 2 and "diff_to_first" in res["b"]
    eer = res["a"]["metrics"]["eer_macro"]
    assert len(eer["seeds"]) == 2 and eer["mean"] == np.mean(eer["seeds"])
    lo, hi = eer["ci"]
    assert 0 <= lo <= hi <= 1
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nkept") and "| a | 2 |" in text and "Paired difference to `a`" in text
    assert len(list((models / "a").glob("*.compare-40.json"))) == 2  # each model's scores, cached
    _run("compare_systems.py", args)  # from the caches; the block is replaced, not repeated
    assert page.read_text().count("<!-- system-comparison:start -->") == 1
    assert json.loads(out.read_text())["systems"] == res  # the cached scores give the same tables
