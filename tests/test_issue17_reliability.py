"""Issue 17 (second round): nothing silently wrong, nothing of the user's replaced.

One section per item of the issue that concerns the command line; each test failed before
the fix. Command-line tests run ``python -m skattloc`` in a subprocess, as a user would;
the networks are tiny and train for one or two epochs on eight 1 s clips. The behaviour
each test pins down is listed in ``docs/reliability.md`` ("second round").
"""
import csv
import warnings

import numpy as np
import pytest

from skattloc import AttLocTagger, LogMelExtractor, make_weak_events

# The helpers of the first round: run the CLI in a subprocess, expect success or one error line.
from .test_issue13_reliability import TINY_CLI, check_error, check_ok, run_cli
from .test_issue13_reliability import make_data as make_weak_data


def make_data(root, n_clips=8):
    """The first round's folder (root/audio/clipN.wav, 1 s, and root/weak.csv), plus
    root/strong.tsv, and root/list.csv naming the clips by path (audio/clipN.wav) with
    root/events.tsv naming them by file name (clipN.wav)."""
    make_weak_data(root, n_clips=n_clips)
    _, _, events = make_weak_events(n_clips=n_clips, n_classes=2, duration=1.0, random_state=0)  # the same clips
    weak = list(csv.reader(open(root / "weak.csv", newline="")))
    with open(root / "list.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "tags"]] + [[f"audio/{name}", tags] for name, tags in weak[1:]])
    rows = "".join(f"clip{i}.wav\t{on:.3f}\t{off:.3f}\t{label}\n" for i, on, off, label in events)
    for name in ("strong.tsv", "events.tsv"):
        (root / name).write_text("filename\tonset\toffset\tevent_label\n" + rows)
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("issue17_data"))


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """A tiny model trained for 2 epochs with seed 0, and its checkpoint folder (kept)."""
    root = tmp_path_factory.mktemp("issue17_model")
    proc = run_cli("fit", data_dir, "-o", root / "m.skattloc", *TINY_CLI, "--epochs", "2",
                   "--checkpoint-dir", root / "ck")
    check_ok(proc)
    assert (root / "ck" / "last.ckpt").is_file()
    return root / "m.skattloc", root / "ck"


@pytest.fixture(scope="module")
def model_file(trained):
    return trained[0]


# ------------------------------------------------------------------ 1. --strong names and rows
def test_1_strong_events_named_by_file_name_match_a_csv_list_of_paths(model_file, data_dir, tmp_path):
    out = tmp_path / "tuned.skattloc"
    proc = run_cli("tune", model_file, data_dir / "list.csv", "--strong", data_dir / "events.tsv", "-o", out, "-q")
    check_ok(proc)
    n_events = len((data_dir / "events.tsv").read_text().splitlines()) - 1
    assert f"({n_events} events)" in proc.stderr and f"event times: {n_events} event(s) in" in proc.stderr
    assert "name their clip by its file name alone" in proc.stderr
    assert AttLocTagger.load(out).event_settings_["info"]["n_clips"] == 8
    pytest.importorskip("sed_scores_eval")
    proc = run_cli("evaluate", model_file, data_dir / "list.csv", "--strong", data_dir / "events.tsv",
                   "-o", tmp_path / "r.csv", "-q")
    check_ok(proc)
    assert "sed_scores_eval" not in proc.stderr
    summary = list(csv.DictReader(open(tmp_path / "r.csv")))[-1]
    assert np.isfinite(float(summary["segment_error_rate"])) and np.isfinite(float(summary["event_error_rate"]))
    assert 0 <= float(summary["psds1"]) <= 1


def test_1_strong_events_that_match_no_clip_are_an_error_that_says_how_names_match(model_file, data_dir, tmp_path):
    bad = tmp_path / "other.tsv"
    bad.write_text("filename\tonset\toffset\tevent_label\nrecordings/dev_00601.flac\t0.1\t0.5\ttone\n")
    for cmd in ("tune", "evaluate"):
        out = ["-o", tmp_path / ("t.skattloc" if cmd == "tune" else "r.csv")]
        check_error(run_cli(cmd, model_file, data_dir / "list.csv", "--strong", bad, *out, "-q"),
                    "1 filenames not listed in the path column of", "'recordings/dev_00601.flac'",
                    "a clip's name as", "or its file name alone ('clip0.wav')")
    assert not (tmp_path / "t.skattloc").exists()


def test_1_a_comma_separated_or_malformed_strong_file_is_refused(model_file, data_dir, tmp_path):
    comma = tmp_path / "strong.csv"
    comma.write_text("filename,onset,offset,event_label\nclip0.wav,0.1,0.5,tone\n")
    check_error(run_cli("tune", model_file, data_dir / "list.csv", "--strong", comma, "-o", tmp_path / "t.skattloc"),
                "the header is comma-separated, but this file must be tab-separated")
    rows = tmp_path / "rows.tsv"
    rows.write_text("filename\tonset\toffset\tevent_label\nclip0.wav,0.1,0.5,tone\n")
    check_error(run_cli("evaluate", model_file, data_dir / "list.csv", "--strong", rows), "line 2 has 1 fields, expected 4")


# ------------------------------------------------------------------ 2. --plot-dir
def test_2_plot_dir_never_replaces_a_users_file_and_names_every_input_apart(model_file, data_dir, tmp_path):
    (tmp_path / "s1").mkdir()
    clip = (data_dir / "audio" / "clip0.wav").read_bytes()
    (tmp_path / "s1" / "y.flac").write_bytes(clip)  # a WAV named .flac still reads
    (tmp_path / "s1__y.flac").write_bytes(clip)
    plots = tmp_path / "plots"
    plots.mkdir()
    mine = plots / "s1__y.flac.png"
    from matplotlib.figure import Figure

    Figure(figsize=(1, 1)).savefig(mine)  # the user's own image, under the name of a figure
    before = mine.read_bytes()
    args = ["localize", model_file, "s1/y.flac", "s1__y.flac", "-o", "e.tsv", "--plot-dir", "plots", "-q"]
    check_error(run_cli(*args, cwd=tmp_path), "refusing to overwrite", "s1__y.flac.png",
                "not a figure", "--plot-dir", "--force")
    assert mine.read_bytes() == before and not (tmp_path / "e.tsv").exists()
    mine.unlink()
    proc = run_cli(*args, cwd=tmp_path)
    check_ok(proc)
    assert sorted(p.name for p in plots.iterdir()) == ["s1__y.flac-2.png", "s1__y.flac.png"]
    assert "2 figure(s)" in proc.stderr and "'s1__y.flac-2.png'" in proc.stderr
    # our own figures of an earlier run are replaced without --force, with one note
    proc = run_cli(*args, cwd=tmp_path)
    check_ok(proc)
    assert "2 earlier figure(s)" in proc.stderr


# ------------------------------------------------------------------ 4. tags that hold a comma
def test_4_fit_refuses_a_tag_with_a_tab_or_line_break(tmp_path):
    data = make_data(tmp_path / "data")
    rows = (data / "weak.csv").read_text().splitlines()
    rows[2] = 'clip1.wav,"door\tknock"'
    (data / "weak.csv").write_text("\n".join(rows) + "\n")
    check_error(run_cli("fit", data, "-o", tmp_path / "m.skattloc", *TINY_CLI),
                "line 3", "'door\\tknock' holds a tab", "tags are names without commas, tabs or line breaks")


def test_4_predictions_quote_a_tag_that_holds_a_comma_and_every_csv_ends_lines_with_lf(data_dir, tmp_path):
    X = LogMelExtractor().transform([str(data_dir / "audio" / f"clip{i}.wav") for i in range(8)])
    tags = [["a,b"], ["c"]] * 4
    tagger = AttLocTagger(n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1, dense_units=4, max_epochs=1,
                          random_state=0, validation_fraction=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the API warns about such tags (issue 17, item 4)
        tagger.fit(X, tags)
    model = tmp_path / "comma.skattloc"
    tagger.save(model, extractor=LogMelExtractor())
    out = tmp_path / "p.csv"
    check_ok(run_cli("predict", model, data_dir / "audio", "-o", out, "--threshold", "0", "-q"))
    raw = out.read_bytes()
    assert b"\r" not in raw
    for row in csv.DictReader(open(out, newline="")):
        assert next(csv.reader([row["tags"]])) == ["a,b", "c"]  # the cell is itself a CSV row of tags


# ------------------------------------------------------------------ 5. -j 0
@pytest.mark.parametrize("cmd", [["predict", "m.skattloc", "a.wav"], ["fit", "data", "-o", "m.skattloc"],
                                 ["evaluate", "m.skattloc", "data"]])
def test_5_zero_jobs_is_a_usage_error(cmd, tmp_path):
    proc = run_cli(*cmd, "-j", "0", "--on-error", "skip", cwd=tmp_path)
    assert proc.returncode == 2 and "-j/--jobs: expected a number of jobs" in proc.stderr and "not 0" in proc.stderr


# ------------------------------------------------------------------ 6. one file twice in a CSV list
def test_6_a_csv_list_naming_one_file_twice_is_refused(data_dir, tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text(f"path,tags\n{data_dir}/audio/clip0.wav,tone\n{data_dir}/audio/clip1.wav,chirp\n"
                       f"{data_dir}/audio/../audio/clip0.wav,chirp\n")
    check_error(run_cli("fit", listing, "-o", tmp_path / "m.skattloc", *TINY_CLI),
                "lists 1 audio file(s) twice", "clip0.wav", "with all its tags in one row")


# ------------------------------------------------------------------ 7. checks before any audio is read
@pytest.fixture
def unreadable_data(tmp_path):
    """weak.csv naming files that are not audio: any error about them means audio was read."""
    data = tmp_path / "bad"
    (data / "audio").mkdir(parents=True)
    (data / "weak.csv").write_text("filename,tags\n" + "".join(f"x{i}.wav,tone\n" for i in range(4)))
    for i in range(4):
        (data / "audio" / f"x{i}.wav").write_text("not audio")
    return data


def test_7_early_stopping_without_a_split_fails_first_in_the_clis_words(unreadable_data, tmp_path):
    line = check_error(run_cli("fit", unreadable_data, "-o", tmp_path / "m.skattloc", *TINY_CLI, "--early-stopping",
                               "--validation-fraction", "0"),
                       "--early-stopping needs a validation split", "--validation-fraction is 0")
    assert "X_val" not in line and "validation_fraction" not in line
    check_error(run_cli("fit", unreadable_data, "-o", tmp_path / "m.skattloc", *TINY_CLI, "--early-stopping"),
                "the default --validation-fraction (auto) holds out none of fewer than 100 clips, and DATA has 4")


def test_7_checkpoint_dir_that_is_a_file_fails_first(unreadable_data, tmp_path):
    (tmp_path / "ck").write_text("a file")
    check_error(run_cli("fit", unreadable_data, "-o", tmp_path / "m.skattloc", *TINY_CLI, "--checkpoint-dir",
                        tmp_path / "ck"), "--checkpoint-dir", "is a file; expected a folder")


# ------------------------------------------------------------------ 9. --resume honours what is asked
def test_9_resume_refuses_fewer_epochs_or_another_seed_and_records_the_seed_that_ran(trained, data_dir, tmp_path):
    _, ck = trained
    out = tmp_path / "r.skattloc"
    base = ["fit", data_dir, "-o", out, "--checkpoint-dir", ck, "--resume", *TINY_CLI]
    check_error(run_cli(*base, "--epochs", "1"), "holds 2 finished epochs, more than --epochs 1")
    check_error(run_cli(*base, "--epochs", "3", "--seed", "5"), "trains with --seed 0", "--seed 5")
    assert not out.exists()
    no_seed = [a for i, a in enumerate(base) if a != "--seed" and (i == 0 or base[i - 1] != "--seed")]
    check_ok(run_cli(*no_seed, "--epochs", "3"))
    tagger = AttLocTagger.load(out)
    assert tagger.n_epochs_ == 3 and tagger.random_state == 0


# ------------------------------------------------------------------ 10. listed files missing from disk
def test_10_on_error_skip_skips_a_listed_file_missing_from_disk(tmp_path):
    data = make_data(tmp_path / "data")
    with open(data / "weak.csv", "a") as f:
        f.write("gone.wav,tone\n")
    check_error(run_cli("fit", data, "-o", tmp_path / "m.skattloc", *TINY_CLI), "gone.wav")
    out = tmp_path / "m2.skattloc"
    proc = run_cli("fit", data, "-o", out, *TINY_CLI, "--on-error", "skip")
    check_ok(proc)
    assert "skipped 1 unreadable file(s)" in proc.stderr and "gone.wav" in proc.stderr
    listed = (tmp_path / "m2.skattloc.skipped.tsv").read_text().splitlines()
    assert listed[0] == "filename\terror" and listed[1].startswith("gone.wav\t") and "not found" in listed[1]


# ------------------------------------------------------------------ 11. small things
def test_11_min_duration_must_be_shorter_than_the_longest_input(model_file, data_dir, tmp_path):
    check_error(run_cli("localize", model_file, data_dir / "audio", "-o", tmp_path / "e.tsv", "--min-duration", "100"),
                "--min-duration 100 s is not shorter than the longest input (1 s")


def test_11_outputs_end_lines_with_lf_and_messages_say_an_event_list(model_file, data_dir, tmp_path):
    report = tmp_path / "r.csv"
    check_ok(run_cli("evaluate", model_file, data_dir, "-o", report, "--on-error", "skip", "-q"))
    for path in (report, tmp_path / "r.csv.skipped.tsv"):
        assert b"\r" not in path.read_bytes()
    check_error(run_cli("localize", model_file, data_dir / "audio", "-o", report), "not an event list")


def test_11_symlinked_subfolders_are_searched_once_even_in_a_cycle(model_file, data_dir, tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "a.wav").write_bytes((data_dir / "audio" / "clip0.wav").read_bytes())
    top = tmp_path / "recs"
    top.mkdir()
    (top / "b.wav").write_bytes((data_dir / "audio" / "clip1.wav").read_bytes())
    try:
        (top / "linked").symlink_to(real, target_is_directory=True)
        (real / "loop").symlink_to(top, target_is_directory=True)  # a cycle back up
    except OSError:
        pytest.skip("no symbolic links here")
    out = tmp_path / "p.csv"
    check_ok(run_cli("predict", model_file, top, "-o", out, "-q"))
    assert [r["filename"] for r in csv.DictReader(open(out))] == ["b.wav", "linked/a.wav"]
