"""``skattloc fit --strong --unlabeled`` (issue 18), run as a user would, in subprocesses."""
import csv
import os
import subprocess
import sys

import pytest
import soundfile as sf

from skattloc import AttLocTagger, make_weak_events

CLASSES = ["tone", "chirp"]
TINY = ["--n-filters", "8", "--rnn-hidden", "8", "--rnn-layers", "1", "--dense-units", "8", "--validation-fraction", "0.25",
        "--batch-size", "8", "--epochs", "1", "--seed", "0", "--accelerator", "cpu", "--quiet"]


def run_cli(*args):
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "skattloc", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """DATA (audio/, weak.csv) of 24 clips, an event list of 8 of them, and 10 unlabeled clips."""
    root = tmp_path_factory.mktemp("every_label")
    audio, Y, events = make_weak_events(n_clips=34, n_classes=2, duration=1.0, event_duration=(0.2, 0.6), random_state=0)
    (root / "data" / "audio").mkdir(parents=True)
    (root / "unlabeled").mkdir()
    names = [f"clip{i:02d}.wav" for i in range(24)]
    for i, wave in enumerate(audio):
        sf.write(root / ("data/audio/" + names[i] if i < 24 else f"unlabeled/u{i}.wav"), wave, 16000)
    with open(root / "data" / "weak.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "tags"])
        for i, name in enumerate(names):
            w.writerow([name, ",".join(c for c, y in zip(CLASSES, Y[i]) if y)])
    timed = [(names[i], on, off, tag) for i, on, off, tag in events if i < 8]
    with open(root / "events.tsv", "w") as f:
        f.write("filename\tonset\toffset\tevent_label\n")
        f.writelines(f"{n}\t{on:.4f}\t{off:.4f}\t{tag}\n" for n, on, off, tag in timed)
    return root, timed


def test_fit_trains_on_tags_event_times_and_unlabeled_audio(data, tmp_path):
    root, timed = data
    out = tmp_path / "m.skattloc"
    proc = run_cli("fit", root / "data", "-o", out, "--strong", root / "events.tsv", "--unlabeled", root / "unlabeled", *TINY)
    assert proc.returncode == 0, proc.stderr
    n_timed = len({e[0] for e in timed})
    assert f"34 clips (" in proc.stderr and f"with tags): {24 - n_timed} tagged, {n_timed} timed, 10 unlabeled" in proc.stderr
    tagger = AttLocTagger.load(out)
    assert sum(tagger.label_counts_.values()) == 34 and tagger.label_counts_["unlabeled"] == 10


def test_unlabeled_audio_from_a_csv_of_paths(data, tmp_path):
    root, _ = data
    listing = tmp_path / "unlabeled.csv"
    listing.write_text("path\n" + "".join(f"{root / 'unlabeled' / f'u{i}.wav'}\n" for i in range(24, 30)))
    proc = run_cli("fit", root / "data", "-o", tmp_path / "m.skattloc", "--unlabeled", listing, *TINY)
    assert proc.returncode == 0, proc.stderr
    assert "with tags): 24 tagged, 0 timed, 6 unlabeled" in proc.stderr and "30 clips (" in proc.stderr


@pytest.mark.parametrize("row, message", [
    ("nosuch.wav\t0.1\t0.5\ttone", "filenames not listed in"),
    ("clip00.wav\t0.5\t3.0\ttone", "is outside the clip"),
    ("clip00.wav\t0.1\t0.5\tbird", "bird"),
])
def test_bad_event_lists_are_refused_before_training(data, tmp_path, row, message):
    root, _ = data
    bad = tmp_path / "bad.tsv"
    bad.write_text("filename\tonset\toffset\tevent_label\n" + row + "\n")
    proc = run_cli("fit", root / "data", "-o", tmp_path / "m.skattloc", "--strong", bad, *TINY)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "m.skattloc").exists()


def test_unlabeled_audio_that_data_also_lists_is_refused(data, tmp_path):
    root, _ = data
    proc = run_cli("fit", root / "data", "-o", tmp_path / "m.skattloc", "--unlabeled", root / "data" / "audio", *TINY)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "are also in DATA" in proc.stderr
