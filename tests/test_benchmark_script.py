"""examples/benchmark_domestic_mix.py end to end, on a tiny fake weak-label folder."""
import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from skattloc import make_weak_events

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "benchmark_domestic_mix.py"
TINY = ["--epochs", "1", "--batch-size", "8", "--n-filters", "8", "--rnn-hidden", "8", "--rnn-layers", "1",
        "--dense-units", "8", "--learning-rate", "0.003"]


def _fake_folder(root, n_clips=32):
    audio, Y, events = make_weak_events(n_clips=n_clips, n_classes=3, duration=1.0, random_state=0)
    classes = ["tone", "chirp", "noise_burst"]
    (root / "audio").mkdir(parents=True)
    names = [f"clip_{i:03d}.wav" for i in range(n_clips)]
    for name, wave in zip(names, audio):
        sf.write(root / "audio" / name, wave, 16000)
    with open(root / "weak.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "tags", "fold"])
        for i, name in enumerate(names):
            w.writerow([name, ",".join(classes[k] for k in np.flatnonzero(Y[i])), i % 4 + 1])
    with open(root / "strong.tsv", "w") as fh:
        fh.write("filename\tonset\toffset\tevent_label\n")
        for i, on, off, label in events:
            fh.write(f"{names[i]}\t{on:.3f}\t{off:.3f}\t{label}\n")
    return names


def _run(args, env_extra=None):
    # One BLAS/OpenMP thread: on a shared 2-core machine, several threads per op thrash.
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_one_fold_from_audio_writes_cache_report_and_plot(tmp_path):
    data = tmp_path / "data"
    names = _fake_folder(data)
    cache = tmp_path / "feats.npz"
    md, js, png = tmp_path / "bench.md", tmp_path / "bench.json", tmp_path / "images" / "clip.png"
    out = _run([str(data), "--features-cache", str(cache), "--folds", "1", "--variants", "gmm,att_loc", *TINY,
                "--workers", "0", "--out-md", str(md), "--out-json", str(js), "--plot", str(png)])
    assert "wrote features cache" in out and "train loss per epoch: [" in out
    text = md.read_text()
    assert "folds [1] of [1, 2, 3, 4] scored" in text
    assert "| system | chirp | noise_burst | tone | ave | sd |" in text
    assert "| att_loc | z_att·O·z_loc |" in text and "| gmm | frame LLR |" in text
    assert png.stat().st_size > 10_000
    res = json.loads(js.read_text())
    assert res["folds"] == [1] and set(res["summary"]) == {"gmm", "att_loc"}
    # Training used folds 2-4 only: 24 clips, 8 scored.
    assert "train 24 clips (folds [2, 3, 4]), score 8 clips" in out

    # Later runs read everything from the cache: no audio (and no librosa) needed.
    shutil.rmtree(data)
    mod = _load_module()
    d = mod.load_data(mod.parse_args(["--features-cache", str(cache)]))
    assert d["X"].dtype == np.float32 and d["X"].shape == (32, 61, 40)
    assert d["filenames"] == names and d["classes"] == ["chirp", "noise_burst", "tone"]
    assert d["folds"].tolist() == [i % 4 + 1 for i in range(32)]
    assert len(d["strong"]) > 0 and d["duration"] == pytest.approx(1.0, abs=0.02)


@pytest.mark.slow
def test_benchmark_end_to_end_from_audio_then_from_the_cache_alone(tmp_path):
    data = tmp_path / "data"
    names = _fake_folder(data)
    cache = tmp_path / "cache" / "feats.npz"
    out = _run([str(data), "--features-cache", str(cache), "--precompute-only"])
    assert "wrote features cache" in out
    z = np.load(cache)
    assert z["X"].dtype == np.float16 and z["X"].shape == (32, 61, 40)
    assert z["filenames"].tolist() == names
    assert sorted(set(z["strong_label"].tolist())) == ["chirp", "noise_burst", "tone"]

    # The cache is all it needs: no audio, no data folder.
    shutil.rmtree(data)
    md, js, png = tmp_path / "docs" / "bench.md", tmp_path / "bench.json", tmp_path / "docs" / "images" / "clip.png"
    out = _run(["--features-cache", str(cache), "--variants", "gmm,mean,att_loc,improved", *TINY,
                "--workers", "1", "--out-md", str(md), "--out-json", str(js), "--plot", str(png), "--curve"])
    assert "train loss per epoch" in out and "total wall time" in out
    text = md.read_text()
    assert "Reduced configuration" in text and "1 epochs instead of the paper's 20" in text
    assert "| system | chirp | noise_burst | tone | ave | sd |" in text
    for v in ("gmm", "mean", "att_loc", "improved"):
        assert f"| {v} |" in text
    assert "within-clip AUC" in text and "z_loc argmax share" in text
    assert "](images/clip.png)" in text and png.stat().st_size > 10_000
    res = json.loads(js.read_text())
    assert res["folds"] == [1, 2, 3, 4]
    for v in ("gmm", "mean", "att_loc", "improved"):
        s = res["summary"][v]
        assert 0 <= s["macro_eer_mean"] <= 1 and len(s["macro_eer_per_fold"]) == 4
    assert set(res["score_names"]["att_loc"]) == {"frame", "att_frame", "paper", "loc", "clip"}
    assert set(res["score_names"]["gmm"]) == {"llr", "clip"}
    fold = res["per_fold"]["att_loc"]["1"]
    assert abs(sum(fold["collapse"]["loc_argmax_share"]) - 1) < 1e-6
    assert len(fold["curve"]) == 1 and len(fold["history"]) == 1


def test_bad_arguments_exit_with_a_message(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--features-cache", str(tmp_path / "none.npz")],
                          capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert proc.returncode != 0 and "give the data folder PATH" in proc.stderr


def _load_module():
    spec = importlib.util.spec_from_file_location("benchmark_domestic_mix", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_thresholds_are_tuned_on_the_training_folds_only(monkeypatch):
    import skattloc.events as events

    mod = _load_module()
    rng = np.random.default_rng(0)
    truth_tr = (rng.random((6, 20, 2)) < 0.3).astype(np.uint8)
    truth_te = (rng.random((4, 20, 2)) < 0.3).astype(np.uint8)
    score_tr, score_te = rng.random((6, 20, 2)), rng.random((4, 20, 2))
    seen = {}

    def spy_tune(frame_true, frame_scores, *a, **k):
        seen["true"], seen["scores"] = frame_true, frame_scores
        return np.array([0.3, 0.7])

    real_f2e = events.frames_to_events

    def spy_f2e(frame_scores, classes, **k):
        seen["threshold"], seen["applied_to"] = k["threshold"], frame_scores
        return real_f2e(frame_scores, classes, **k)

    monkeypatch.setattr(events, "tune_thresholds", spy_tune)
    monkeypatch.setattr(events, "frames_to_events", spy_f2e)
    meta = dict(classes=["a", "b"], strong=[("t0", 0.1, 0.2, "a")], hop_s=0.016, offset_s=0.008, duration=0.34)
    out = mod.evaluate_job({"frame": {"train": score_tr, "test": score_te}}, rng.random((4, 2)),
                           np.array([[1, 0], [0, 1], [1, 1], [0, 0]]), truth_tr, truth_te, meta,
                           ["t0", "t1", "t2", "t3"], 1)
    assert seen["true"] is truth_tr and seen["scores"] is score_tr
    assert seen["applied_to"] is score_te
    np.testing.assert_array_equal(seen["threshold"], [0.3, 0.7])
    np.testing.assert_array_equal(out["loc"]["frame"]["thresholds"], [0.3, 0.7])
    assert out["eer"].shape == (2,)
