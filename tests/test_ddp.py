"""Data-parallel training through Lightning's DDP strategies, started from inside ``fit``.

Two CPU processes talk over gloo. Each test checks that the estimator in the calling
process ends up with exactly the weights that rank 0 held at the end of training (so its
predictions are those of that state), that both ranks trained the same network, that the
per-epoch history came back, and that the model learned.
"""
import os
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback

from skattloc import AttLocTagger
from skattloc.metrics import equal_error_rate

from .conftest import SMALL

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build",
)

EPOCHS = 5


class SaveRankState(Callback):
    """Writes each rank's final network weights (and the world size) to ``folder``.

    At module level so that it pickles by reference into spawned processes.
    """

    def __init__(self, folder):
        self.folder = str(folder)

    def on_fit_end(self, trainer, pl_module):
        state = {k: v.detach().cpu().clone() for k, v in pl_module.model.state_dict().items()}
        torch.save(
            {"state": state, "world_size": trainer.world_size, "pid": os.getpid()},
            os.path.join(self.folder, f"rank{trainer.global_rank}.pt"),
        )


def _ddp_fit(synth, tmp_path, strategy):
    tr = synth["train"]
    tagger = AttLocTagger(
        **SMALL, max_epochs=EPOCHS, accelerator="cpu", devices=2, strategy=strategy,
        callbacks=[SaveRankState(tmp_path)], random_state=0,
    )
    return tagger.fit(synth["X"][tr], synth["Y"][tr])


def _check_ddp_result(tagger, synth, tmp_path):
    X, Y, te = synth["X"], synth["Y"], synth["test"]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    # Two processes trained, and neither was the calling process.
    assert r0["world_size"] == 2 and r1["world_size"] == 2
    assert os.getpid() not in (r0["pid"], r1["pid"])
    # Gradients were all-reduced: both ranks end with the same network.
    for k, v in r0["state"].items():
        torch.testing.assert_close(r1["state"][k], v, rtol=1e-5, atol=1e-6)
    # The estimator holds exactly rank 0's final weights ...
    own = tagger.model_.state_dict()
    assert set(own) == set(r0["state"])
    for k, v in r0["state"].items():
        assert torch.equal(own[k], v), f"{k} differs from rank 0's weights after fit"
    # ... so its predictions are those of a network loaded with that state.
    net = tagger._build_model(X.shape[-1], Y.shape[1])  # a fresh CGRNN of the tagger's architecture
    net.load_state_dict(r0["state"])
    net.eval()
    with torch.no_grad():
        expected = net(torch.from_numpy(X[te])).clip.numpy()
    np.testing.assert_allclose(tagger.predict_proba(X[te]), expected, rtol=1e-5, atol=1e-6)
    # The per-epoch history came back from the training process.
    assert [row["epoch"] for row in tagger.history_] == list(range(EPOCHS))
    assert tagger.n_epochs_ == EPOCHS
    assert all(np.isfinite(row["train_loss"]) for row in tagger.history_)
    # It learned: held-out macro EER well below chance (0.5).
    eer = equal_error_rate(Y[te], tagger.predict_proba(X[te]))
    assert eer < 0.2, f"macro EER {eer:.3f} after {EPOCHS} DDP epochs"


def test_ddp_spawn_two_cpu_processes_return_the_trained_model(synth, tmp_path):
    tagger = _ddp_fit(synth, tmp_path, "ddp_spawn")
    _check_ddp_result(tagger, synth, tmp_path)


@pytest.mark.skipif(sys.platform != "linux", reason="ddp_notebook forks; fork is reliable on Linux only")
def test_ddp_notebook_fork_two_cpu_processes_return_the_trained_model(synth, tmp_path):
    # The strategy for Jupyter: processes are forked, so nothing is pickled or re-imported.
    tagger = _ddp_fit(synth, tmp_path, "ddp_notebook")
    _check_ddp_result(tagger, synth, tmp_path)


_SCRIPT = """
import json, sys
import numpy as np, torch
from skattloc import AttLocTagger

if __name__ == "__main__":
    data = np.load(sys.argv[1])
    tagger = AttLocTagger(**json.loads(sys.argv[2]), max_epochs=2, accelerator="cpu", devices=2,
                          strategy="ddp", random_state=0).fit(data["X"], data["Y"])
    rank = int(__import__("os").environ.get("LOCAL_RANK", 0))
    p = tagger.predict_proba(data["X"])
    np.save(sys.argv[3] + f".rank{rank}.npy", p)
    with open(sys.argv[3] + f".rank{rank}.json", "w") as f:
        json.dump({"n_epochs": tagger.n_epochs_}, f)
"""


@pytest.mark.slow
def test_ddp_subprocess_launcher_from_a_plain_script(synth, tmp_path):
    # strategy="ddp" (what "auto" picks for several devices in a script) re-runs the script
    # for rank 1; the calling process is rank 0 and keeps its model.
    import json
    import subprocess

    tr = synth["train"]
    np.savez(tmp_path / "data.npz", X=synth["X"][tr][:64], Y=synth["Y"][tr][:64])
    script = tmp_path / "train_ddp.py"
    script.write_text(_SCRIPT)
    out = tmp_path / "proba"
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "data.npz"), json.dumps(SMALL), str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):  # both processes ran the whole script, fit included
        assert json.loads(open(f"{out}.rank{rank}.json").read()) == {"n_epochs": 2}
    p0, p1 = np.load(f"{out}.rank0.npy"), np.load(f"{out}.rank1.npy")
    np.testing.assert_allclose(p0, p1, rtol=1e-5, atol=1e-6)  # the same model in both processes
