"""End-to-end tests of the ``skattloc`` command line on a small synthetic folder.

The main flow runs in subprocesses (``python -m skattloc ...``), as a user would; error
cases that need no trained model call :func:`skattloc.cli.main` in-process, which is the
same code without the interpreter start-up.
"""
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from skattloc import AttLocTagger, LogMelExtractor, make_weak_events
from skattloc.cli import main
from skattloc.events import read_events_tsv

CLASSES = ["tone", "chirp"]
TINY = ["--n-filters", "16", "--rnn-hidden", "8", "--rnn-layers", "1", "--dense-units", "16", "--validation-fraction", "0.25",
        "--batch-size", "8", "--epochs", "2", "--seed", "0", "--accelerator", "cpu"]
TIMEOUT = 600


def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("SKATTLOC_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "skattloc", *map(str, args)], capture_output=True, text=True,
        timeout=TIMEOUT, cwd=cwd, env=env,
    )


def check_ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


def check_user_error(proc, *fragments, code=1):
    assert proc.returncode == code, f"exit {proc.returncode}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """audio/ (WAV and FLAC), weak.csv with folds and strong.tsv: 24 clips of 1 s."""
    root = tmp_path_factory.mktemp("cli_data")
    audio, Y, events = make_weak_events(
        n_clips=24, n_classes=2, duration=1.0, event_duration=(0.2, 0.6), random_state=0
    )
    (root / "audio").mkdir()
    names = [f"clip{i:02d}.{'flac' if i % 4 == 0 else 'wav'}" for i in range(len(audio))]
    for name, wave in zip(names, audio):
        sf.write(root / "audio" / name, wave, 16000)
    with open(root / "weak.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "tags", "fold"])
        for i, name in enumerate(names):
            w.writerow([name, ",".join(c for c, y in zip(CLASSES, Y[i]) if y), 1 + i % 2])
    with open(root / "strong.tsv", "w") as f:
        f.write("filename\tonset\toffset\tevent_label\n")
        for i, on, off, label in events:
            f.write(f"{names[i]}\t{on:.4f}\t{off:.4f}\t{label}\n")
    return root


@pytest.fixture(scope="module")
def model_file(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_model") / "tagger.skattloc"
    proc = run_cli("fit", data_dir, "-o", out, *TINY)
    check_ok(proc)
    assert out.is_file()
    return out


def test_fit_writes_a_loadable_model_with_feature_settings(model_file):
    tagger = AttLocTagger.load(model_file)
    assert list(tagger.classes_) == sorted(CLASSES)
    assert tagger.n_epochs_ == 2
    assert tagger.rnn_hidden == 8 and tagger.get_params()["callbacks"] is None
    assert tagger.feature_params_["sr"] == 16000 and tagger.feature_params_["n_mels"] == 40


def test_fit_from_a_csv_of_paths_and_one_fold(data_dir, tmp_path):
    rows = list(csv.DictReader(open(data_dir / "weak.csv")))
    listing = tmp_path / "list.csv"
    with open(listing, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "tags", "fold"])
        for r in rows:
            w.writerow([os.path.relpath(data_dir / "audio" / r["filename"], tmp_path), r["tags"], r["fold"]])
    out = tmp_path / "m.skattloc"
    assert main(["fit", str(listing), "-o", str(out), "--folds", "1", "-q", *TINY, "--epochs", "1"]) == 0
    tagger = AttLocTagger.load(out)
    assert tagger.n_epochs_ == 1 and list(tagger.classes_) == sorted(CLASSES)


def test_predict_writes_probabilities_and_decisions(model_file, data_dir, tmp_path):
    out = tmp_path / "pred.csv"
    proc = run_cli("predict", model_file, data_dir / "audio", "-o", out, "--threshold", "0.4")
    check_ok(proc)
    rows = list(csv.DictReader(open(out)))
    files = sorted(p.name for p in (data_dir / "audio").iterdir())
    assert [r["filename"] for r in rows] == files
    tags = sorted(CLASSES)
    proba = np.array([[float(r[f"proba_{c}"]) for c in tags] for r in rows])
    pred = np.array([[int(r[f"pred_{c}"]) for c in tags] for r in rows])
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(pred, (proba >= 0.4).astype(int))
    for r, p in zip(rows, pred):
        assert r["tags"] == ",".join(c for c, d in zip(tags, p) if d)
    # The same numbers as the Python API on the same files.
    tagger = AttLocTagger.load(model_file)
    X = LogMelExtractor().transform([str(data_dir / "audio" / f) for f in files])
    np.testing.assert_allclose(proba, tagger.predict_proba(X), atol=2e-6)


def test_localize_writes_dcase_events_and_one_plot_per_file(model_file, data_dir, tmp_path):
    out, plots = tmp_path / "events.tsv", tmp_path / "plots"
    some = [data_dir / "audio" / "clip01.wav", data_dir / "audio" / "clip04.flac"]
    proc = run_cli("localize", model_file, *some, "-o", out, "--plot-dir", plots, "--no-clip-gate",
                   "--frame-threshold", "0.0", "--localization", "frame")
    check_ok(proc)
    assert open(out).readline().rstrip("\n").split("\t") == ["filename", "onset", "offset", "event_label"]
    events = read_events_tsv(out)
    # Threshold 0 without the clip gate: every tag is active over each whole clip.
    names = {os.path.normpath(str(p)) for p in some}
    assert {(e[0], e[3]) for e in events} == {(n, c) for n in names for c in CLASSES}
    for _, onset, offset, _ in events:
        assert 0.0 <= onset < offset <= 1.0 + 1e-6
    assert len(list(plots.glob("*.png"))) == len(some)


def test_evaluate_reports_eer_and_segment_f1(model_file, data_dir, tmp_path):
    out = tmp_path / "report.csv"
    proc = run_cli("evaluate", model_file, data_dir, "--folds", "2", "-o", out)
    check_ok(proc)
    rows = list(csv.DictReader(open(out)))
    assert [r["tag"] for r in rows[:-1]] == sorted(CLASSES)
    assert rows[-1]["n_clips"] == "12"
    for r in rows:
        assert 0.0 <= float(r["eer"]) <= 1.0
        f1 = float(r["segment_f1"])
        assert np.isnan(f1) or 0.0 <= f1 <= 1.0
    assert "eer" in proc.stdout and "segment_f1" in proc.stdout


def test_evaluate_without_strong_labels_reports_eer_only(model_file, data_dir, tmp_path):
    listing = tmp_path / "list.csv"
    rows = list(csv.DictReader(open(data_dir / "weak.csv")))
    with open(listing, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "tags"])
        for r in rows[:8]:
            w.writerow([str(data_dir / "audio" / r["filename"]), r["tags"]])
    out = tmp_path / "report.csv"
    assert main(["evaluate", str(model_file), str(listing), "-o", str(out), "-q"]) == 0
    report = list(csv.DictReader(open(out)))
    assert "segment_f1" not in report[0] and len(report) == len(CLASSES) + 1


def test_help_has_examples_and_console_script(capsys):
    for argv in ([], ["fit"], ["predict"], ["localize"], ["evaluate"]):
        with pytest.raises(SystemExit) as exc:
            main(argv + ["--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out and "skattloc " in out
    script = shutil.which("skattloc", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the skattloc console script is not installed (pip install -e .)")
    proc = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0 and proc.stdout.startswith("skattloc "), proc.stderr


# ------------------------------------------------------------------------------ errors
def test_missing_data_folder_is_a_clean_error(tmp_path):
    proc = run_cli("fit", tmp_path / "nope", "-o", tmp_path / "m.skattloc", *TINY)
    check_user_error(proc, "data not found", "nope")
    assert not (tmp_path / "m.skattloc").exists()


@pytest.mark.parametrize("argv", [["--epochs", "abc"], ["--epochs", "0"], ["--dropout", "2"], ["--no-such-option"]])
def test_bad_option_value_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "data", "-o", "m.skattloc", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and argv[0] in err and "usage: skattloc" in err


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["fit", "{data}", "-o", "{tmp}/m.skattloc", "--pooling", "max"], ["pooling must be one of"]),
        (["fit", "{data}", "-o", "{tmp}/m.skattloc", "--param", "no_such=1"], ["no parameter 'no_such'"]),
        (["fit", "{data}", "-o", "{tmp}/m.skattloc", "--folds", "7"], ["folds [7]"]),
        (["fit", "{data}", "-o", "{tmp}/missing_dir/m.skattloc"], ["does not exist"]),
        (["fit", "{tmp}/weak_only", "-o", "{tmp}/m.skattloc"], ["audio"]),
        (["predict", "{model}", "{tmp}/nothing_here"], ["not found"]),
        (["predict", "{tmp}/not_a_model.txt", "{data}/audio"], ["not_a_model.txt"]),
        (["predict", "{model}", "{tmp}/empty"], ["no audio files"]),
        (["localize", "{model}", "{tmp}/broken.wav", "-o", "{tmp}/e.tsv"], ["broken.wav"]),
        (["localize", "{model}", "{data}/audio", "-o", "{tmp}/e.tsv", "--frame-threshold", "dog=0.2"], ["every tag"]),
        (["localize", "{model}", "{data}/audio", "-o", "{tmp}/e.tsv", "--localization", "nope"], ["localization"]),
        (["evaluate", "{model}", "{data}", "--strong", "{tmp}/none.tsv"], ["strong label file not found"]),
    ],
)
def test_user_mistakes_exit_1_with_one_line_and_no_traceback(argv, fragments, model_file, data_dir, tmp_path, capsys):
    (tmp_path / "weak_only").mkdir()
    (tmp_path / "weak_only" / "weak.csv").write_text("filename,tags\na.wav,dog\n")
    (tmp_path / "not_a_model.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    fill = dict(data=data_dir, tmp=tmp_path, model=model_file)
    code = main([a.format(**fill) for a in argv] + ["-q"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    for f in fragments:
        assert f in err, err


# ---------------------------------------------------------------- event settings (issue 11)
def test_fit_calibrates_event_settings_on_its_validation_clips(model_file):
    tagger = AttLocTagger.load(model_file)
    assert len(tagger.validation_indices_) == round(0.25 * 24)  # TINY's --validation-fraction 0.25
    assert tagger.event_settings_["source"] == "weak"
    assert tagger.event_settings_["classes"] == sorted(CLASSES)


def test_localize_uses_the_stored_settings_and_flags_override_them(model_file, data_dir, tmp_path):
    tagger = AttLocTagger.load(model_file)
    files = sorted(str(p) for p in (data_dir / "audio").iterdir())
    X = LogMelExtractor().transform(files)
    expected = tagger.detect_events(X, filenames=files)
    out = tmp_path / "e.tsv"
    check_ok(run_cli("localize", model_file, *files, "-o", out, "-q"))
    got = read_events_tsv(out)
    assert [(e[0], e[3]) for e in got] == [(e[0], e[3]) for e in expected]
    np.testing.assert_allclose([e[1:3] for e in got], [e[1:3] for e in expected], atol=1e-3)
    # an override for this run only: a high threshold, no gate -> other events
    check_ok(run_cli("localize", model_file, *files, "-o", out, "-q", "--frame-threshold", "0.99", "--no-clip-gate"))
    high = read_events_tsv(out)
    ref = tagger.detect_events(X, filenames=files, threshold=0.99, clip_threshold=False)
    assert [(e[0], e[3]) for e in high] == [(e[0], e[3]) for e in ref]


def test_tune_with_event_times_writes_a_model_with_strong_settings(model_file, data_dir, tmp_path):
    out = tmp_path / "tuned.skattloc"
    proc = run_cli("tune", model_file, data_dir, "--folds", "2", "-o", out, "-q")
    check_ok(proc)
    assert "tuned on the event times of 12 clips" in proc.stderr and "event F1 on these clips" in proc.stderr
    tuned, base = AttLocTagger.load(out), AttLocTagger.load(model_file)
    assert tuned.event_settings_["source"] == "strong" and tuned.event_settings_["info"]["n_clips"] == 12
    X = LogMelExtractor().transform([str(data_dir / "audio" / "clip00.flac")])
    np.testing.assert_array_equal(tuned.predict_proba(X), base.predict_proba(X))  # the network is unchanged
    # weak calibration on demand, and the model file itself is never the output
    proc = run_cli("tune", model_file, data_dir, "--folds", "2", "--weak", "-o", tmp_path / "weak.skattloc", "-q")
    check_ok(proc)
    assert AttLocTagger.load(tmp_path / "weak.skattloc").event_settings_["source"] == "weak"
    check_user_error(run_cli("tune", model_file, data_dir, "-o", model_file, "-q"), "model")


def test_evaluate_reports_event_f1_and_psds(model_file, data_dir, tmp_path):
    pytest.importorskip("sed_scores_eval")
    out = tmp_path / "report.csv"
    proc = run_cli("evaluate", model_file, data_dir, "--folds", "2", "-o", out, "-q")
    check_ok(proc)
    rows = list(csv.DictReader(open(out)))
    for key in ("event_f1", "intersection_f1", "psds1", "psds2", "segment_f1"):
        assert key in rows[-1]
    for key in ("psds1", "psds2"):
        assert 0.0 <= float(rows[-1][key]) <= 1.0
    assert "PSDS1/PSDS2" in proc.stderr


def test_evaluate_bootstrap_prints_confidence_intervals(model_file, data_dir, tmp_path):
    proc = run_cli("evaluate", model_file, data_dir, "--folds", "2", "--bootstrap", "50", "-q")
    check_ok(proc)
    line = next(ln for ln in proc.stderr.splitlines() if "intervals, 50 resamples" in ln)
    assert "eer_macro [" in line and "event_f1 [" in line and "segment_f1 [" in line
    bad = run_cli("evaluate", model_file, data_dir, "--bootstrap", "-3")
    assert bad.returncode == 2 and "--bootstrap" in bad.stderr and "resamples" in bad.stderr
