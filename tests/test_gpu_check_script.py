"""``examples/gpu_check.py`` (the prepared run for a lent GPU) works end to end: a CPU dry run."""
import importlib.util
import json
from pathlib import Path

import torch

_SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "gpu_check.py"


def test_gpu_check_dry_run_on_cpu_writes_every_section(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_check", _SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "c.json"
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mod.main(["--quick", "--accelerator", "cpu", "--precisions", "32-true", "--profile-precision", "32-true", "--rounds", "1", "--out", str(out)])
    finally:
        torch.set_num_threads(n)
    res = json.loads(out.read_text())
    assert res["errors"] == {}
    row = res["train_speed"]["32-true"]
    assert row["fit_clips_per_s"] > 0 and row["plain_loop_clips_per_s"] > 0
    assert abs(row["fit_over_plain"] - row["fit_clips_per_s"] / row["plain_loop_clips_per_s"]) < 1e-9
    learn = res["learning"]["32-true"]
    assert learn["finite_outputs"] and learn["eer_macro"] < 0.45  # it learns something in 5 epochs
    assert sorted(res["inference"], key=int) == ["1", "16", "100", "1000"]
    prof = res["profile"]
    assert prof["training batch (all)"]["calls"] == 4  # 200 clips, batch 100, 2 epochs
    assert 0 < prof["backward"]["median_ms"] < prof["training batch (all)"]["median_ms"]
    assert "tf32" not in res  # GPU only
    for rows in res["inference"].values():
        for name in ("predict_proba", "localize"):
            assert rows[name]["real_time_factor"] > 0
