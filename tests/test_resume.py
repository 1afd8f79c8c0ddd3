"""Training that survives interruption (issue 5): checkpoints through Lightning, resume after
a SIGKILL, and temporary files only where the user says."""
import builtins
import json
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
import torch
from lightning.pytorch.callbacks import Callback

from skattloc import AttLocTagger
from skattloc.persistence import ModelFileError

TINY = dict(n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1, dense_units=4, batch_size=4, random_state=0)
MAX = 4


def _data(n=16, t=10, f=8):
    X = np.random.default_rng(0).normal(size=(n, t, f)).astype(np.float32)
    Y = (np.arange(n)[:, None] % np.array([2, 3]) == 0).astype(int)
    return X, Y


class _EpochCounter(Callback):
    def __init__(self):
        self.started = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.started.append(trainer.current_epoch)


class _CrashAt(Callback):
    """Stands in for a crash: raises when ``epoch`` starts."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


@pytest.fixture(scope="module")
def uninterrupted():
    X, Y = _data()
    return AttLocTagger(**TINY, max_epochs=MAX).fit(X, Y)


# ------------------------------------------------------------------ killed process
CHILD = """
import json, os, sys, tempfile, time
import numpy as np
from lightning.pytorch.callbacks import Callback
from skattloc import AttLocTagger

# What imports alone leave in the temp folder (torch._dynamo makes torchinductor_<user>/;
# onnxruntime, when installed, is imported by torchmetrics and writes telemetry to .ses):
# not fit's doing, so the parent compares against this.
json.dump(sorted(os.listdir(tempfile.gettempdir())), open(sys.argv[4], "w"))

class SlowFromEpoch2(Callback):  # a long run: the parent kills it before it ends
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch >= 2:
            time.sleep(600)

X, Y = np.load(sys.argv[1]), np.load(sys.argv[2])
AttLocTagger(**{tiny!r}, max_epochs={max_epochs}, checkpoint_dir=sys.argv[3],
             callbacks=[SlowFromEpoch2()]).fit(X, Y)
print("FINISHED")
"""


def test_fit_killed_mid_run_resumes_from_its_last_checkpoint(tmp_path, uninterrupted):
    X, Y = _data()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    ckpt_dir, cwd, tmp = tmp_path / "ckpt", tmp_path / "cwd", tmp_path / "systmp"
    cwd.mkdir()
    tmp.mkdir()
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD).format(tiny=TINY, max_epochs=MAX))
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "X.npy"), str(tmp_path / "Y.npy"), str(ckpt_dir), str(tmp_path / "tmp.json")],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while not (ckpt_dir / "last.ckpt").exists():
            assert proc.poll() is None, f"the child ended early: {proc.stdout.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        out = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL and "FINISHED" not in out
    # Nothing outside the checkpoint folder: no lightning_logs/ in the working directory,
    # no temporary file in the system temp folder; inside it, the checkpoint (and perhaps
    # the temporary file of a write the kill interrupted).
    assert os.listdir(cwd) == [] and sorted(os.listdir(tmp)) == json.loads((tmp_path / "tmp.json").read_text())
    assert "last.ckpt" in os.listdir(ckpt_dir)
    assert all(n == "last.ckpt" or (n.startswith(".last.ckpt.") and n.endswith(".tmp")) for n in os.listdir(ckpt_dir))
    done = torch.load(ckpt_dir / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] + 1

    counter = _EpochCounter()
    resumed = AttLocTagger(**TINY, max_epochs=MAX, checkpoint_dir=ckpt_dir, resume=True, callbacks=[counter]).fit(X, Y)
    assert counter.started == list(range(done, MAX)), "resumed at the first unfinished epoch"
    assert resumed.n_epochs_ == MAX and [h["epoch"] for h in resumed.history_] == list(range(MAX))
    # On the CPU the resumed fit is the uninterrupted one: same losses, same weights (bit for
    # bit with one thread; with several, the killed child's multithreaded matmuls may differ
    # in the last float32 bit: measured at 3e-8 on the weights and 6e-8 on a logged loss in
    # CI with 2 threads).
    assert [sorted(h) for h in resumed.history_] == [sorted(h) for h in uninterrupted.history_]
    for got, want in zip(resumed.history_, uninterrupted.history_):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-7)
    np.testing.assert_allclose(resumed.predict_proba(X), uninterrupted.predict_proba(X), rtol=1e-6, atol=1e-7)
    assert os.listdir(ckpt_dir) == ["last.ckpt"]  # a successful fit cleans leftover temporary files


@pytest.mark.filterwarnings("ignore:No positive samples:UserWarning")  # a 6-clip validation split
def test_resume_after_a_crash_restores_validation_and_early_stopping_state(tmp_path):
    X, Y = _data(n=24)
    params = dict(**TINY, max_epochs=3, validation_fraction=0.25, early_stopping=True, patience=3)
    reference = AttLocTagger(**params).fit(X, Y)
    with pytest.raises(RuntimeError, match="simulated crash"):
        AttLocTagger(**params, checkpoint_dir=tmp_path, callbacks=[_CrashAt(2)]).fit(X, Y)
    resumed = AttLocTagger(**params, checkpoint_dir=tmp_path, resume=True).fit(X, Y)
    assert resumed.history_ == reference.history_ and {"val_loss", "val_auroc"} <= set(resumed.history_[-1])
    np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))  # best epoch's weights


def test_resume_can_extend_training_and_a_finished_fit_trains_no_more(tmp_path, uninterrupted):
    X, Y = _data()
    AttLocTagger(**TINY, max_epochs=2, checkpoint_dir=tmp_path).fit(X, Y)
    counter = _EpochCounter()
    longer = AttLocTagger(**TINY, max_epochs=MAX, checkpoint_dir=tmp_path, resume=True, callbacks=[counter]).fit(X, Y)
    assert counter.started == list(range(2, MAX)) and longer.n_epochs_ == MAX
    np.testing.assert_array_equal(longer.predict_proba(X), uninterrupted.predict_proba(X))
    again = _EpochCounter()
    same = AttLocTagger(**TINY, max_epochs=MAX, checkpoint_dir=tmp_path, resume=True, callbacks=[again]).fit(X, Y)
    assert again.started == [] and same.n_epochs_ == MAX
    np.testing.assert_array_equal(same.predict_proba(X), uninterrupted.predict_proba(X))


def test_resume_without_a_checkpoint_warns_and_starts_from_the_first_epoch(tmp_path, uninterrupted):
    X, Y = _data()
    with pytest.warns(UserWarning, match=r"resume=True but there is no checkpoint .*last\.ckpt.* yet; training from the first epoch"):
        tagger = AttLocTagger(**TINY, max_epochs=MAX, checkpoint_dir=tmp_path / "new", resume=True).fit(X, Y)
    assert tagger.history_ == uninterrupted.history_


def test_resume_refuses_a_checkpoint_of_another_fit(tmp_path):
    X, Y = _data()
    AttLocTagger(**TINY, max_epochs=1, checkpoint_dir=tmp_path).fit(X, Y)
    with pytest.raises(ValueError, match=r"cannot resume from .*last\.ckpt.*other data or parameters \(Y \(the clip tags\)\)"):
        AttLocTagger(**TINY, max_epochs=2, checkpoint_dir=tmp_path, resume=True).fit(X, 1 - Y)
    with pytest.raises(ValueError, match=r"rnn_hidden: 4 in the checkpoint, 5 now.*set resume=False"):
        AttLocTagger(**{**TINY, "rnn_hidden": 5}, max_epochs=2, checkpoint_dir=tmp_path, resume=True).fit(X, Y)
    with pytest.raises(ValueError, match=r"loc_denominator: 'att_loc' in the checkpoint, 'loc' now"):
        AttLocTagger(**TINY, loc_denominator="loc", max_epochs=2, checkpoint_dir=tmp_path, resume=True).fit(X, Y)
    with pytest.raises(ValueError, match=r"frontend: 'conv2d' in the checkpoint, 'frame_cnn' now"):
        AttLocTagger(**TINY, frontend="frame_cnn", time_pool=1, max_epochs=2, checkpoint_dir=tmp_path, resume=True).fit(X, Y)
    with pytest.raises(ValueError, match=r"n_clips: 16 in the checkpoint, 12 now"):
        AttLocTagger(**TINY, max_epochs=2, checkpoint_dir=tmp_path, resume=True).fit(X[:12], Y[:12])


def test_resume_refuses_a_checkpoint_with_a_pickled_payload(tmp_path):
    X, Y = _data()
    AttLocTagger(**TINY, max_epochs=1, checkpoint_dir=tmp_path).fit(X, Y)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    ckpt = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=True)
    ckpt["evil"] = Payload()
    torch.save(ckpt, tmp_path / "last.ckpt")
    with pytest.raises(ModelFileError, match=r"refused to resume from .*last\.ckpt.*could run code"):
        AttLocTagger(**TINY, max_epochs=2, checkpoint_dir=tmp_path, resume=True).fit(X, Y)
    assert not marker.exists()
    (tmp_path / "last.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError, match=r"cannot resume from .*last\.ckpt|refused to resume"):
        AttLocTagger(**TINY, max_epochs=2, checkpoint_dir=tmp_path, resume=True).fit(X, Y)


# ------------------------------------------------------------------ where files go
@pytest.fixture
def written(monkeypatch, tmp_path):
    """Every path opened for writing (builtins.open) while the test runs, from a clean cwd."""
    paths = []
    real_open = builtins.open

    def spy(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"):
            paths.append(Path(os.path.abspath(file)))
        return real_open(file, mode, *args, **kwargs)

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(builtins, "open", spy)
    yield paths


def test_without_checkpoint_dir_fit_writes_no_file(written):
    X, Y = _data()
    AttLocTagger(**TINY, max_epochs=2).fit(X, Y)
    assert written == [] and os.listdir(".") == []


def test_checkpoints_and_logs_go_only_to_checkpoint_dir(written, tmp_path):
    X, Y = _data()
    ckpt_dir = tmp_path / "ckpt"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tensorboardX.*")
        AttLocTagger(**TINY, max_epochs=2, checkpoint_dir=ckpt_dir, logger=True).fit(X, Y)
    assert written and all(ckpt_dir in p.parents for p in written), written
    assert os.listdir(".") == []  # no lightning_logs/ or checkpoints/ in the working directory
    assert (ckpt_dir / "last.ckpt").is_file() and (ckpt_dir / "lightning_logs").is_dir()


def test_keep_checkpoints_false_leaves_no_trace(tmp_path):
    X, Y = _data()
    ckpt_dir = tmp_path / "made" / "by" / "fit"
    tagger = AttLocTagger(**TINY, max_epochs=2, checkpoint_dir=ckpt_dir, keep_checkpoints=False).fit(X, Y)
    assert tagger.n_epochs_ == 2 and not ckpt_dir.exists()
    # A folder the user made, with other files in it: only the checkpoint goes.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    AttLocTagger(**TINY, max_epochs=1, checkpoint_dir=mine, keep_checkpoints=False).fit(X, Y)
    assert os.listdir(mine) == ["notes.txt"]


def test_failed_fit_keeps_its_checkpoint_for_resume_even_with_keep_checkpoints_false(tmp_path):
    X, Y = _data()
    with pytest.raises(RuntimeError, match="simulated crash"):
        AttLocTagger(**TINY, max_epochs=3, checkpoint_dir=tmp_path, keep_checkpoints=False, callbacks=[_CrashAt(2)]).fit(X, Y)
    assert (tmp_path / "last.ckpt").is_file()
    AttLocTagger(**TINY, max_epochs=3, checkpoint_dir=tmp_path, keep_checkpoints=False, resume=True).fit(X, Y)
    assert os.listdir(tmp_path) == []
