"""Issue 13: defects found by trying the command line and the API as a new user would.

One section per item of the issue; each test failed before the fix (items 4 and 13 were
partly fixed by the refactor of issue 12: see the notes there). Command-line tests run
``python -m skattloc`` in a subprocess, as a user would. The networks are tiny and train
for one epoch on eight 1 s clips, so the whole file takes about a minute and a half on 2
cores. The behaviour each test pins down is listed in ``docs/reliability.md``.
"""
import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from skattloc import AttLocTagger, LogMelExtractor, load_weak_dataset, make_weak_events

TIMEOUT = 300
CLASSES = ["tone", "chirp"]
TINY_CLI = ["--n-filters", "4", "--kernel-size", "3", "--rnn-hidden", "4", "--rnn-layers", "1",
            "--dense-units", "4", "--batch-size", "8", "--epochs", "1", "--seed", "0", "--accelerator", "cpu", "-q"]
TINY = dict(n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1, dense_units=4, batch_size=8, max_epochs=1,
            random_state=0, accelerator="cpu")


def _env(show_warnings=False):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("SKATTLOC_DEBUG", None)
    if not show_warnings:
        env["PYTHONWARNINGS"] = "ignore"
    return env


def run_cli(*args, cwd=None, show_warnings=False):
    return subprocess.run([sys.executable, "-m", "skattloc", *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=cwd, env=_env(show_warnings))


def check_ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr


def check_error(proc, *fragments, code=1):
    """A one-line error (exit ``code``) without traceback that holds every fragment."""
    assert proc.returncode == code, f"exit {proc.returncode}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, proc.stderr
    for f in fragments:
        assert f in errors[0], proc.stderr
    return errors[0]


def make_data(root, tags=None, n_clips=8):
    """root/audio/clipN.wav (1 s at 16 kHz) and root/weak.csv; ``tags`` overrides the tags."""
    audio, Y, _ = make_weak_events(n_clips=n_clips, n_classes=2, duration=1.0, random_state=0)
    (root / "audio").mkdir(parents=True)
    with open(root / "weak.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "tags"])
        for i, wave in enumerate(audio):
            sf.write(root / "audio" / f"clip{i}.wav", wave, 16000)
            clip_tags = [c for c, y in zip(CLASSES, Y[i]) if y] if tags is None else tags[i]
            w.writerow([f"clip{i}.wav", ",".join(clip_tags)])
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("issue13_data"))


@pytest.fixture(scope="module")
def model_file(data_dir, tmp_path_factory):
    """A tiny model written by 'skattloc fit -o FOLDER/' (item 3: the folder gets model.skattloc)."""
    folder = tmp_path_factory.mktemp("issue13_model") / "models"
    proc = run_cli("fit", data_dir, "-o", f"{folder}/", *TINY_CLI)
    check_ok(proc)
    return folder / "model.skattloc"


# ------------------------------------------------------------------ 1. output paths
def test_1_output_over_an_input_of_the_run_is_refused(model_file, data_dir, tmp_path):
    before = model_file.read_bytes()
    model_file = tmp_path / "copy.skattloc"  # the shared model stays intact even where this fails
    model_file.write_bytes(before)
    check_error(run_cli("predict", model_file, data_dir / "audio", "-o", model_file, "-q"),
                "refusing to write the predictions CSV", "it is the model file of this run")
    assert model_file.read_bytes() == before
    clip = data_dir / "audio" / "clip3.wav"
    audio = clip.read_bytes()
    check_error(run_cli("predict", model_file, data_dir / "audio", "-o", clip, "--force", "-q"),
                "it is an audio input of this run")  # --force never overwrites an input
    assert clip.read_bytes() == audio
    labels = (data_dir / "weak.csv").read_bytes()
    check_error(run_cli("fit", data_dir, "-o", data_dir / "weak.csv", *TINY_CLI),
                "refusing to write the model file", "it is the label file of this run")
    assert (data_dir / "weak.csv").read_bytes() == labels


def test_1_existing_file_of_another_kind_needs_force_same_kind_is_replaced_with_a_note(model_file, data_dir, tmp_path, capsys):
    from skattloc.cli import main

    other = tmp_path / "weak_copy.csv"
    other.write_text("filename,tags\na.wav,dog\n")
    check_error(run_cli("predict", model_file, data_dir / "audio", "-o", other, "-q"),
                "refusing to overwrite", "not a predictions CSV", "--force")
    assert other.read_text() == "filename,tags\na.wav,dog\n"
    proc = run_cli("predict", model_file, data_dir / "audio", "-o", other, "--force", "-q")
    check_ok(proc)
    assert "replacing it (--force)" in proc.stderr and other.read_text().startswith("filename,tags,proba_")
    # An earlier output of the same kind: replaced, with a one-line note (in-process: the
    # same code as above, without another interpreter start-up).
    capsys.readouterr()
    assert main(["predict", str(model_file), str(data_dir / "audio" / "clip0.wav"), "-o", str(other), "-q"]) == 0
    err = capsys.readouterr().err
    assert "note:" in err and "exists (a predictions CSV) and will be replaced" in err
    assert len(other.read_text().splitlines()) == 2
    # A file that is not a skattloc model where a model goes.
    wav = tmp_path / "song.wav"
    sf.write(wav, np.zeros(1600), 16000)
    check_error(run_cli("fit", data_dir, "-o", wav, *TINY_CLI), "it is an audio file, not a model file")


# ------------------------------------------------------------------ 2. write access
@pytest.fixture
def unwritable_dir(tmp_path):
    d = tmp_path / "readonly"
    d.mkdir()
    d.chmod(0o555)
    try:
        (d / "probe").touch()
    except OSError:
        yield d
        d.chmod(0o755)
        return
    (d / "probe").unlink()
    d.chmod(0o755)
    # Root writes anywhere: use a read-only file system.
    if os.path.isdir("/sys"):
        try:
            open("/sys/skattloc-probe", "w").close()
        except OSError:
            yield Path("/sys")
            return
        os.unlink("/sys/skattloc-probe")
    pytest.skip("no unwritable folder available (running as root without a read-only /sys)")


def test_2_unwritable_output_fails_before_any_work(data_dir, unwritable_dir):
    t0 = time.perf_counter()
    proc = run_cli("fit", data_dir, "-o", unwritable_dir / "m.skattloc", *TINY_CLI)
    check_error(proc, "is not writable", str(unwritable_dir))
    assert "features in" not in proc.stderr  # nothing was extracted or trained
    assert time.perf_counter() - t0 < 60


def test_2_a_model_that_cannot_be_written_is_kept_elsewhere(data_dir, tmp_path):
    out_dir, work = tmp_path / "out", tmp_path / "work"
    out_dir.mkdir()
    work.mkdir()
    # The destination fails when the model is written (e.g. the disk filled up during training).
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from skattloc import AttLocTagger
        original = AttLocTagger.save
        def save(self, path, extractor=None):
            if Path(path).resolve().parent == Path(sys.argv[1]).resolve():
                raise OSError(28, "No space left on device")
            return original(self, path, extractor=extractor)
        AttLocTagger.save = save
        from skattloc.cli import main
        sys.exit(main(sys.argv[2:]))
    """)
    out = out_dir / "m.skattloc"
    proc = subprocess.run([sys.executable, "-c", script, str(out_dir), "fit", str(data_dir), "-o", str(out), *TINY_CLI],
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=work, env=_env())
    line = check_error(proc, "could not write the model file", str(out), "No space left on device", "saved to")
    rescued = list(work.glob("m.rescued-*.skattloc"))
    assert len(rescued) == 1 and str(rescued[0].name) in line, proc.stderr
    assert not out.exists()
    assert list(AttLocTagger.load(rescued[0]).classes_) == sorted(CLASSES)


# ------------------------------------------------------------------ 3. -o newdir/
def test_3_trailing_slash_is_a_folder_that_gets_a_default_name(model_file, data_dir, tmp_path):
    assert model_file.name == "model.skattloc" and model_file.is_file()  # fit -o models/ (the fixture)
    proc = run_cli("predict", model_file, data_dir / "audio", "-o", f"{tmp_path}/new/sub/", "-q")
    check_ok(proc)
    assert (tmp_path / "new" / "sub" / "predictions.csv").is_file()
    (tmp_path / "plain").write_text("x")
    check_error(run_cli("predict", model_file, data_dir / "audio", "-o", f"{tmp_path}/plain/", "-q"),
                "ends in '/' (a folder) but is a file")


# ------------------------------------------------------------------ 4. first clip without tags
def test_4_first_clip_without_tags_cli(tmp_path):
    # Fixed by the one tag encoder of issue 12 (skattloc.tags) for tag names; a regression test.
    _, Y, _ = make_weak_events(n_clips=8, n_classes=2, duration=1.0, random_state=0)
    tags = [[] if i == 0 else [c for c, y in zip(CLASSES, Y[i]) if y] for i in range(8)]
    data = make_data(tmp_path / "data", tags=tags)
    proc = run_cli("fit", data, "-o", tmp_path / "m.skattloc", *TINY_CLI)
    check_ok(proc)
    assert "8 clips (7 with tags)" in proc.stderr


def test_4_first_clip_without_tags_api():
    X = np.random.default_rng(0).normal(size=(6, 6, 5))
    tags = [[], ["a"], ["a", "b"], ["b"], [], ["a"]]
    tagger = AttLocTagger(**TINY).fit(X, tags)
    assert list(tagger.classes_) == ["a", "b"]
    assert np.isfinite(tagger.score(X, tags))
    # Tags named by numbers, first clip without tags: rows of different lengths cannot be a
    # 0/1 matrix (numpy's "setting an array element with a sequence" before).
    int_tags = [[], [3], [1, 3], [1], [], [3]]
    tagger = AttLocTagger(**TINY).fit(X, int_tags)
    assert tagger.classes_.tolist() == [1, 3]
    with pytest.raises(ValueError, match=r"Y rows have different lengths \[1, 2\]"):
        AttLocTagger(**TINY).fit(X, [[0, 1], [1], [0, 1], [1, 0], [0, 1], [1, 1]])


# ------------------------------------------------------------------ 5. a tag in every clip
def test_5_tag_in_every_clip_warns_and_trains(tmp_path):
    _, Y, _ = make_weak_events(n_clips=8, n_classes=2, duration=1.0, random_state=0)
    tags = [["hum"] + [c for c, y in zip(CLASSES, Y[i]) if y] for i in range(8)]
    proc = run_cli("fit", make_data(tmp_path / "data", tags=tags), "-o", tmp_path / "m.skattloc", *TINY_CLI)
    check_ok(proc)
    assert "AttributeError" not in proc.stderr
    X = np.random.default_rng(0).normal(size=(4, 6, 5))
    for y in ([["hum"]] * 4, [["hum"], ["hum", "dog"], ["hum"], ["hum", "dog"]]):
        with pytest.warns(UserWarning, match=r"classes \['hum'\] are positive in every clip"):
            AttLocTagger(**TINY).fit(X, y)


# ------------------------------------------------------------------ 6. Lightning arguments
def test_6_bad_lightning_arguments_fail_before_any_work(data_dir, tmp_path, capsys):
    proc = run_cli("fit", data_dir, "-o", tmp_path / "m.skattloc", *TINY_CLI, "--devices", "abc")
    check_error(proc, "invalid Lightning setting", "devices='abc'")
    assert "features in" not in proc.stderr
    from skattloc.cli import main  # the other examples of the issue, in-process (same code)

    for argv, fragment in ((["--devices", "-1"], "devices=-1"),
                           (["--param", "trainer_kwargs={'bogus': 1}"], "trainer_kwargs has keys ['bogus']"),
                           (["--precision", "7"], "Precision '7' is invalid")):
        capsys.readouterr()
        assert main(["fit", str(data_dir), "-o", str(tmp_path / "m.skattloc"), *TINY_CLI, *argv]) == 1
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and fragment in errors[0] and "features in" not in err, err


def test_6_bad_lightning_arguments_in_python_are_value_errors_before_any_work():
    X = np.zeros((0, 5, 5))  # no clips: any work on X would fail with another message
    for params, match in [
        (dict(devices="abc"), "invalid Lightning setting"),
        (dict(devices=-1, accelerator="cpu"), "invalid Lightning setting"),
        (dict(precision="7"), "invalid Lightning setting"),
        (dict(strategy="bogus"), "invalid Lightning setting"),
        (dict(trainer_kwargs={"bogus": 1}), r"trainer_kwargs has keys \['bogus'\]"),
    ]:
        with pytest.raises(ValueError, match=match) as exc:
            AttLocTagger(**params).fit(X, np.zeros((0, 1)))
        assert "\n" not in str(exc.value)
    AttLocTagger(**TINY, trainer_kwargs={"gradient_clip_val": 1.0}).fit(
        np.random.default_rng(0).normal(size=(4, 6, 5)), np.eye(2, dtype=int)[[0, 1, 0, 1]])


# ------------------------------------------------------------------ 7. integer PCM
def test_7_integer_pcm_is_scaled_like_the_file(tmp_path):
    from scipy.io import wavfile

    rng = np.random.default_rng(0)
    wave = rng.normal(0, 0.1, 16000).clip(-1, 0.99)
    ext = LogMelExtractor()
    for dtype, scale, centre in ((np.int16, 2**15, 0), (np.int32, 2**31, 0), (np.uint8, 2**7, 2**7)):
        pcm = (wave * scale + centre).astype(dtype)
        path = tmp_path / f"{np.dtype(dtype).name}.wav"
        wavfile.write(path, 16000, pcm)
        rate, read = wavfile.read(path)
        assert read.dtype == dtype and rate == 16000
        from_ints = ext.transform([read])[0]
        np.testing.assert_allclose(from_ints, ext.transform([str(path)])[0], atol=1e-4)  # soundfile's reading
        floats = ((pcm.astype(np.float64) - centre) / scale).astype(np.float32)
        np.testing.assert_array_equal(from_ints, ext.transform([floats])[0])
    np.testing.assert_array_equal(ext.transform([wave])[0], ext.transform([wave.astype(np.float32)])[0])
    with pytest.raises(TypeError, match="int64 integers, which are not a PCM sample type"):
        ext.transform([(wave * 2**15).astype(np.int64)])


# ------------------------------------------------------------------ 8. lower sample rate
def test_8_low_sample_rate_warns_with_bands_and_rate(tmp_path):
    rng = np.random.default_rng(0)
    low, full = tmp_path / "phone.wav", tmp_path / "full.wav"
    sf.write(low, rng.normal(0, 0.1, 8000), 8000)
    sf.write(full, rng.normal(0, 0.1, 16000), 16000)
    ext = LogMelExtractor()
    assert ext.empty_bands(8000) == 8 and ext.empty_bands(22050) == 0
    from skattloc.features import LowSampleRateWarning

    with pytest.warns(LowSampleRateWarning, match=r"1 of 2 audio file\(s\).*8000 Hz.*8 of 40 mel bands lie above 4000 Hz") as rec:
        F = ext.transform([str(low), str(full)])
    low_rate = [w for w in rec if issubclass(w.category, LowSampleRateWarning)]
    assert len(low_rate) == 1  # one per call
    assert low_rate[0].message.files == [(str(low), 8000, 8)]
    # The 8 empty bands: about 10 (natural log) below the same bands of full-band audio
    # (not log(1e-8): the analysis window leaks a little energy into them).
    assert (F[0][:, -8:].mean(axis=0) < F[1][:, -8:].mean(axis=0) - 8).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ext.transform([str(full)])  # full-band audio: no warning
        LogMelExtractor(fmax=4000).transform([str(low)])  # the model stops at its Nyquist frequency


# ------------------------------------------------------------------ 9. unreadable files
@pytest.fixture
def folder_with_sidecar(data_dir, tmp_path):
    d = tmp_path / "recs"
    d.mkdir()
    for name in ("clip0.wav", "clip1.wav"):
        (d / name).write_bytes((data_dir / "audio" / name).read_bytes())
    (d / "._clip1.wav").write_bytes(b"\x00\x05\x16\x07 macOS AppleDouble")  # a sidecar file
    sf.write(d / "phone.wav", np.random.default_rng(0).normal(0, 0.1, 8000), 8000)  # 8 kHz (item 8)
    return d


def test_9_unreadable_file_error_says_how_to_skip(model_file, folder_with_sidecar, tmp_path):
    check_error(run_cli("predict", model_file, folder_with_sidecar, "-o", tmp_path / "p.csv", "-q"),
                "._clip1.wav", "use --on-error skip")
    assert not (tmp_path / "p.csv").exists()


def test_9_on_error_skip_goes_on_and_lists_the_skipped_files(model_file, folder_with_sidecar, tmp_path):
    out = tmp_path / "p.csv"
    proc = run_cli("predict", model_file, folder_with_sidecar, "-o", out, "--on-error", "skip", "-q", show_warnings=True)
    check_ok(proc)
    assert [r["filename"] for r in csv.DictReader(open(out))] == ["clip0.wav", "clip1.wav", "phone.wav"]
    # Item 8 in the command line: one warning line for the run, with the rate and the bands.
    warned = [line for line in proc.stderr.splitlines() if "8000 Hz" in line]
    assert len(warned) == 1 and "warning:" in warned[0] and "8 of 40 mel bands" in warned[0], proc.stderr
    assert "skipped 1 unreadable file(s)" in proc.stderr and "._clip1.wav" in proc.stderr
    skipped = list(csv.DictReader(open(tmp_path / "p.csv.skipped.tsv"), delimiter="\t"))
    assert [r["filename"] for r in skipped] == ["._clip1.wav"] and "cannot read audio file" in skipped[0]["error"]
    from skattloc.cli import main  # localize: the same code in-process

    events = tmp_path / "e.tsv"
    assert main(["localize", str(model_file), str(folder_with_sidecar), "-o", str(events), "--on-error", "skip", "-q"]) == 0
    assert (tmp_path / "e.tsv.skipped.tsv").read_text().splitlines()[1].startswith("._clip1.wav\t")


def test_9_on_error_skip_in_fit_and_evaluate(data_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "audio").mkdir()
    for f in (data_dir / "audio").iterdir():
        (data / "audio" / f.name).write_bytes(f.read_bytes())
    (data / "audio" / "clip3.wav").write_bytes(b"RIFF0000WAVEjunk")  # broken
    (data / "weak.csv").write_text((data_dir / "weak.csv").read_text())
    model = tmp_path / "m.skattloc"
    proc = run_cli("fit", data, "-o", model, *TINY_CLI, "--on-error", "skip")
    check_ok(proc)
    assert "7 clips" in proc.stderr and "clip3.wav" in (tmp_path / "m.skattloc.skipped.tsv").read_text()
    from skattloc.cli import main  # evaluate: the same code in-process

    assert main(["evaluate", str(model), str(data), "-o", str(tmp_path / "r.csv"), "--on-error", "skip", "-q"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert rows[-1]["n_clips"] == "7" and "clip3.wav" in (tmp_path / "r.csv.skipped.tsv").read_text()


# ------------------------------------------------------------------ 10. Ctrl-C
def _interrupt_after_checkpoint(cmd, ckpt, cwd):
    """Start ``cmd``, send SIGINT once ``ckpt`` exists (after the first epoch), return the process."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=_env(),
                            # a SIGINT ignored by the parent (a background job) would be inherited
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + TIMEOUT
    while not ckpt.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)  # into a later epoch
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the process ignored SIGINT\n{err}")
    return proc.returncode, out, err


def _epochs_in(ckpt):
    import torch

    return int(torch.load(ckpt, weights_only=True, map_location="cpu")["epoch"]) + 1


def test_10_ctrl_c_in_cli_fit_exits_130_keeps_the_checkpoint_and_says_how_to_resume(data_dir, tmp_path):
    ck, model = tmp_path / "ck", tmp_path / "m.skattloc"
    args = ["fit", str(data_dir), "-o", str(model), *TINY_CLI]
    cmd = [sys.executable, "-m", "skattloc", *args, "--param", f"checkpoint_dir={str(ck)!r}", "--epochs", "100000"]
    code, _, err = _interrupt_after_checkpoint(cmd, ck / "last.ckpt", tmp_path)
    assert code == 130, err
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if "interrupted" in x]
    assert line and "skattloc fit: interrupted" in line[0] and "--resume" in line[0] and "last.ckpt" in line[0], err
    assert not model.exists()
    done = _epochs_in(ck / "last.ckpt")  # the checkpoint survived and loads
    from skattloc.cli import main  # resuming as the message says (in-process: no SIGINT needed)

    assert main(args + ["--checkpoint-dir", str(ck), "--epochs", str(done + 1), "--resume"]) == 0
    assert AttLocTagger.load(model).n_epochs_ == done + 1


def test_10_ctrl_c_in_fit_raises_keyboard_interrupt(tmp_path):
    script = textwrap.dedent("""
        import signal, sys
        import numpy as np
        from skattloc import AttLocTagger
        X = np.random.default_rng(0).normal(size=(8, 6, 5))
        tagger = AttLocTagger(n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1, dense_units=4, batch_size=8,
                              max_epochs=100000, random_state=0, accelerator="cpu", checkpoint_dir=sys.argv[1])
        try:
            tagger.fit(X, np.eye(2, dtype=int)[np.arange(8) % 2])
        except KeyboardInterrupt:
            print("KeyboardInterrupt", signal.getsignal(signal.SIGINT) is signal.default_int_handler,
                  hasattr(tagger, "model_"))
        except SystemExit as exc:
            print("SystemExit", exc.code)
    """)
    ck = tmp_path / "ck"
    code, out, err = _interrupt_after_checkpoint([sys.executable, "-c", script, str(ck)], ck / "last.ckpt", tmp_path)
    assert code == 0, err
    assert out.split() == ["KeyboardInterrupt", "True", "False"], out + err  # Ctrl-C handler restored
    assert _epochs_in(ck / "last.ckpt") >= 1


# ------------------------------------------------------------------ 11. non-UTF-8 labels
def test_11_label_file_that_is_not_utf8_names_the_file_and_encoding(data_dir, tmp_path):
    data = tmp_path / "data"
    (data / "audio").mkdir(parents=True)
    (data / "audio" / "clip0.wav").write_bytes((data_dir / "audio" / "clip0.wav").read_bytes())
    (data / "weak.csv").write_bytes("filename,tags\nclip0.wav,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"weak\.csv' is not UTF-8 text: byte 0xe9 on line 2 .*expected a UTF-8 file"):
        load_weak_dataset(data)
    check_error(run_cli("fit", data, "-o", tmp_path / "m.skattloc", *TINY_CLI),
                str(data / "weak.csv"), "is not UTF-8", "line 2")


# ------------------------------------------------------------------ 12. same name in two folders
def test_12_same_file_name_in_two_folders(model_file, data_dir, tmp_path):
    for folder, clip in (("a", "clip0.wav"), ("b", "clip1.wav")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.wav").write_bytes((data_dir / "audio" / clip).read_bytes())
    out = tmp_path / "p.csv"
    proc = run_cli("predict", model_file, "a", "b", "-o", out, "-q", cwd=tmp_path)
    check_ok(proc)
    assert [r["filename"] for r in csv.DictReader(open(out))] == ["a/x.wav", "b/x.wav"]
    assert "note:" in proc.stderr and "'x.wav' is in more than one input" in proc.stderr
    # The same file twice is still refused, naming it and how it was given.
    check_error(run_cli("predict", model_file, "a", "a/x.wav", "-o", out, "-q", cwd=tmp_path),
                "the inputs give the file 'a/x.wav' twice", "through 'a' and 'a/x.wav'")


# ------------------------------------------------------------------ 13. cross_val_score
def test_13_cross_val_score_with_tag_name_lists_documented_forms():
    from sklearn.model_selection import KFold, cross_val_score

    from skattloc.metrics import eer_scorer
    from skattloc.tags import encode_tags

    X = np.random.default_rng(0).normal(size=(8, 6, 5))
    tags = [["dog"], ["cat"], ["dog", "cat"], [], ["dog"], ["cat"], ["dog", "cat"], ["dog"]]
    tagger = AttLocTagger(**TINY)
    with pytest.raises(ValueError, match="legacy multi-label"):  # scikit-learn's check_cv, not ours
        cross_val_score(tagger, X, tags, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny folds: EER undefined for some classes
        scores = cross_val_score(tagger, X, tags, cv=KFold(2), error_score="raise")
        assert scores.shape == (2,)
        Y, classes = encode_tags(tags)
        scores = cross_val_score(tagger, X, Y, cv=2, scoring=eer_scorer, error_score="raise")
        assert scores.shape == (2,) and classes.tolist() == ["cat", "dog"]


# ------------------------------------------------------------------ 14. event option ranges
@pytest.mark.parametrize("option", [["--frame-threshold", "5"], ["--frame-threshold", "tone=0.3,chirp=7"],
                                    ["--frame-threshold", "-0.1"]])
def test_14_frame_threshold_must_be_in_0_1(option, tmp_path):
    proc = run_cli("localize", "m.skattloc", "a.wav", *option, cwd=tmp_path)
    assert proc.returncode == 2 and "expected a number in [0, 1]" in proc.stderr, proc.stderr


def test_14_median_filter_must_be_shorter_than_the_longest_input(model_file, data_dir, tmp_path):
    check_error(run_cli("localize", model_file, data_dir / "audio", "-o", tmp_path / "e.tsv", "--median-filter", "1000", "-q"),
                "--median-filter 1000 s is not shorter than the longest input (1 s")
    strong = tmp_path / "strong.tsv"
    strong.write_text("filename\tonset\toffset\tevent_label\nclip0.wav\t0.1\t0.5\ttone\n")
    check_error(run_cli("evaluate", model_file, data_dir, "--strong", strong, "--median-filter", "2"),
                "--median-filter 2 s")
