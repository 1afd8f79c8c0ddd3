"""examples/benchmark_domestic_mix.py end to end, on a tiny fake weak-label folder."""
import csv
import importlib.util
import json
from types import SimpleNamespace
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
TINY = ["--max-epochs", "1", "--param", "rnn_hidden=8", "--param", "rnn_layers=1", "--param", "dense_units=8",
        "--param", "n_filters=8", "--param", "batch_size=8", "--param", "validation_fraction=0.25"]


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


def test_one_fold_from_audio_writes_cache_results_report_and_plot(tmp_path):
    data = tmp_path / "data"
    names = _fake_folder(data)
    cache, results = tmp_path / "feats.npz", tmp_path / "res.jsonl"
    out = _run([str(data), "--features-cache", str(cache), "--folds", "1", "--seeds", "0",
                "--systems", "default,att_loc,gmm", "--results", str(results), "--save-models", str(tmp_path / "m"),
                "--bootstrap", "50", *TINY])
    assert "wrote features cache" in out and "default fold 1 seed 0: macro EER" in out
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["system"], r["fold"], r["seed"]) for r in rows] == [("default", 1, 0), ("att_loc", 1, 0), ("gmm", 1, 0)]
    for r in rows[:2]:
        # trained on folds 2-4 only (24 clips), scored on fold 1 (8 clips)
        assert r["n_train"] == 24 and r["n_test"] == 8
        assert len(r["eer"]) == 3 and 0 <= r["psds1"] <= 1 and 0 <= r["psds2"] <= 1
        assert r["weak_settings"]["source"] in ("weak", "default") and r["n_strong_val"] == 6
        assert r["strong_settings"]["source"] == "strong"
        assert set(r["weak"]) >= {"event_f1", "event_f1_merged", "event_f1_merged_macro", "segment_f1",
                                  "intersection_f1", "n_events"}
        # the fold's bootstrap draws, for the report's intervals
        assert set(r["resamples"]) >= {"eer_macro", "event_f1", "event_f1_macro", "segment_f1"}
        assert all(len(v) == 50 for v in r["resamples"].values())
    assert rows[1]["params"]["pooling"] == "att_loc" and rows[1]["params"]["loc_background"] is True
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["att_loc_fold1_seed0.skattloc", "default_fold1_seed0.skattloc"]
    assert all(0 <= r["psds1_raw"] <= 1 for r in rows[:2])

    # the default recipe's fit on every clip, timed
    out = _run(["--features-cache", str(cache), "--full-fit", "--results", str(results), *TINY])
    assert "default recipe on all 32 clips: fit" in out
    full = json.loads(results.read_text().splitlines()[-1])
    assert full["full_fit"] is True and full["n_clips"] == 32 and full["fit_s"] > 0

    # resumable: the same command skips what is done
    out = _run([str(data), "--features-cache", str(cache), "--folds", "1", "--seeds", "0",
                "--systems", "default", "--results", str(results), *TINY])
    assert "skip default fold 1 seed 0" in out
    assert len(results.read_text().splitlines()) == 4

    md, js, png = tmp_path / "bench.md", tmp_path / "bench.json", tmp_path / "images" / "clip.png"
    _run(["--features-cache", str(cache), "--report", str(results), "--out-md", str(md), "--out-json", str(js),
          "--plot", str(png)])
    text = md.read_text()
    assert "nothing chosen on the scored fold" in text
    assert "| system | chirp | noise_burst | tone | macro | fold 4 only (untouched) |" in text
    assert "| default | weak only" in text and "| default | strong, 180 validation clips" in text
    assert "## Uncertainty: seeds, folds and clips" in text and "| default | event F1 (micro) |" in text
    assert "event F1 macro (weak)" in text and "event F1 raw" in text
    # att_loc against default, draw by draw on the same clips (gmm has no localization: not listed)
    assert "Paired differences to `default`" in text and "| att_loc | macro EER |" in text
    assert "| gmm | macro EER |" not in text.split("Paired differences to `default`", 1)[1].split("##", 1)[0]
    assert "The default recipe on all 32 clips, timing run cut to 1 epochs" in text  # --max-epochs 1: a projection
    assert "not a measured full fit" in text
    assert png.stat().st_size > 10_000 and "](images/clip.png)" in text
    res = json.loads(js.read_text())
    assert set(res["summary"]) == {"default", "att_loc", "gmm"} and res["folds"] == [1]
    assert res["paired_to_default"]["att_loc"]["eer"]["pairs"] == 1
    lo, hi = res["spread"]["default"]["weak.event_f1_merged"]["interval_95"]
    assert lo <= res["summary"]["default"]["weak.event_f1_merged"]["0"] <= hi or not np.isfinite(lo)

    # Later runs read everything from the cache: no audio (and no librosa) needed.
    shutil.rmtree(data)
    mod = _load_module()
    d = mod.load_data(mod.parse_args(["--features-cache", str(cache)]))
    assert d["X"].dtype == np.float32 and d["X"].shape == (32, 61, 40)
    assert d["filenames"] == names and d["classes"] == ["chirp", "noise_burst", "tone"]
    assert d["folds"].tolist() == [i % 4 + 1 for i in range(32)]
    assert len(d["strong"]) > 0 and d["duration"] == pytest.approx(1.0, abs=0.02)


def test_a_full_fit_timing_goes_into_the_time_section_of_an_existing_report(tmp_path):
    mod = _load_module()
    page = tmp_path / "bench.md"
    page.write_text("# Benchmarks\n\n## Time\n\n- an older projection\n\n## Example clip\n")
    row = {"full_fit": True, "n_clips": 2400, "fit_s": 1500.0, "n_epochs": 57, "max_epochs": 80, "threads": 2,
           "machine": "AMD EPYC (2 cores)", "finished": "2026-12-07 20:00:00"}
    mod.write_full_fit_block(page, [row])
    text = page.read_text()
    assert "one uncut fit" in text and "25.0 min for 57 epochs (early stopping ended it" in text
    assert text.index("one uncut fit") < text.index("an older projection") < text.index("## Example clip")
    mod.write_full_fit_block(page, [dict(row, fit_s=1200.0, n_epochs=80)])  # a rerun replaces the block
    text = page.read_text()
    assert text.count("one uncut fit") == 1 and "20.0 min for 80 epochs (the full epoch budget" in text
    assert text.startswith("# Benchmarks") and "an older projection" in text


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


class _SpyTagger:
    """Stands in for AttLocTagger: records which clips each step sees."""

    calls = []

    def __init__(self, **params):
        self.params = params
        self.localization = "att_frame"
        self.frame_timing_ = None

    def get_params(self):
        return dict(self.params)

    def fit(self, X, y):
        type(self).calls.append(("fit", X.copy()))
        self.classes_ = np.array(["a", "b"])
        self.n_epochs_, self.history_ = 1, [{"epoch": 0, "train_loss": 1.0}]
        self.validation_indices_ = np.array([0, 1])
        self.event_settings_ = {"source": "weak"}
        return self

    def frame_outputs(self, X):
        type(self).calls.append(("frame_outputs", X.copy()))
        rng = np.random.default_rng(len(X))
        return [{"clip": rng.random(2), "frame": rng.random((len(x), 2)), "att_frame": rng.random((len(x), 2))} for x in X]

    def get_event_postprocessor(self):
        class _Scores:
            @staticmethod
            def scores(frame_scores, clip_scores, *, timing):
                return [s * c[None, :] for s, c in zip(frame_scores, clip_scores)]
        return _Scores()

    def detect_events(self, X, filenames, clip_duration):
        type(self).calls.append(("detect_events", X.copy()))
        return [(filenames[0], 0.0, 0.1, "a")]

    def tune_events(self, X, reference, filenames, clip_duration):
        type(self).calls.append(("tune_events", X.copy(), list(filenames), list(reference)))
        self.event_settings_ = {"source": "strong"}
        return self


def test_no_step_sees_the_scored_fold_except_scoring(monkeypatch):
    mod = _load_module()
    rng = np.random.default_rng(0)
    n = 12
    folds = np.array([1, 2, 3, 4] * 3)
    X = rng.normal(size=(n, 5, 3)).astype(np.float32)
    X[:, 0, 0] = np.arange(n)  # clip id in the features
    names = [f"c{i}" for i in range(n)]
    strong = [(names[i], 0.0, 0.05, "a") for i in range(n)]
    d = dict(X=X, Y=np.eye(2, dtype=int)[np.arange(n) % 2], classes=["a", "b"], folds=folds, filenames=names,
             strong=strong, hop_s=0.016, offset_s=0.008, duration=0.096)
    monkeypatch.setattr(mod, "make_tagger", lambda system, seed, args: _SpyTagger(system=system))
    def fake_evaluate(tagger, scores, clip, d, te, ref, names, psds=True, bootstrap=0, random_state=0):  # scoring: detect_events
        est = tagger.detect_events(d["X"][te], filenames=names, clip_duration=d["duration"])
        return SimpleNamespace(eer=np.zeros(2), psds1=0.5, psds2=0.5, events=est, resamples={})

    monkeypatch.setattr(mod, "_evaluate", fake_evaluate)
    monkeypatch.setattr(mod, "_events_row", lambda report: {"event_f1": 0.0})
    monkeypatch.setattr("skattloc.sed_scores.psds", lambda *a, **k: 0.5)
    _SpyTagger.calls = []
    args = mod.parse_args([])
    args.seed_list, args.fold_list, args.plot_data = [0], [1], False
    truth = np.zeros((n, 5, 2), dtype=np.uint8)
    mod.run_job("default", 1, 0, args, d, truth)
    ids = {c[0]: set(c[1][:, 0, 0].astype(int).tolist()) for c in _SpyTagger.calls}
    scored = set(np.flatnonzero(folds == 1).tolist())
    train = set(np.flatnonzero(folds != 1).tolist())
    assert ids["fit"] == train
    train_sorted = np.flatnonzero(folds != 1)
    assert ids["tune_events"] == set(train_sorted[[0, 1]].tolist())  # the fit's held-out clips, from training folds
    tune = [c for c in _SpyTagger.calls if c[0] == "tune_events"][0]
    assert {e[0] for e in tune[3]} <= {names[i] for i in train_sorted[[0, 1]]}  # their strong labels only
    assert ids["frame_outputs"] == scored and ids["detect_events"] == scored


def test_paired_cv_difference_pairs_draws_by_fold_and_seed():
    mod = _load_module()

    def row(fold, seed, value, draws):
        return {"fold": fold, "seed": seed, "eer": [value], "resamples": {"eer_macro": draws}}

    # default: 0.20 on both folds; the other system 0.05 lower, with draws that move together
    base = [row(1, 0, 0.20, [0.18, 0.20, 0.22]), row(2, 0, 0.20, [0.19, 0.20, 0.21])]
    other = [row(1, 0, 0.15, [0.13, 0.15, 0.17]), row(2, 0, 0.15, [0.14, 0.15, 0.16]),
             row(2, 1, 0.99, [0.99, 0.99, 0.99])]  # seed 1 has no default job: not paired
    diff, lo, hi, n = mod.paired_cv_difference(other, base, "eer", "eer_macro", [1, 2])
    assert diff == pytest.approx(-0.05) and n == 2
    # paired draw by draw the difference is constant; unpaired it would span about 0.1
    assert lo == pytest.approx(-0.05) and hi == pytest.approx(-0.05)
    # a fold the default never ran: no difference
    assert mod.paired_cv_difference(other, base[:1], "eer", "eer_macro", [1, 2])[3] == 0
    # jobs without draws: the difference, no interval
    bare = [{k: v for k, v in r.items() if k != "resamples"} for r in other]
    d2, lo2, hi2, _ = mod.paired_cv_difference(bare, base, "eer", "eer_macro", [1, 2])
    assert d2 == pytest.approx(-0.05) and np.isnan(lo2) and np.isnan(hi2)
