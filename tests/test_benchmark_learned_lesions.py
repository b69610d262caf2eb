"""benchmarks/learned_lesions.py: a training checkpoint becomes loadable weights, and the table shows every lesion."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _bench():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))  # it imports learned_recon as the script does
    try:
        spec = importlib.util.spec_from_file_location("learned_lesions_bench", BENCH / "learned_lesions.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def _entry(err: float, learned: bool) -> dict[str, Any]:
    e: dict[str, Any] = {"contrast": 1.0, "relative_error": err, "passes": err <= 0.2}
    if learned:
        corr = {"excess": 0.1, "false_alarm": 0.02, "flags": False}
        z = {"excess": 2.46, "false_alarm": 0.31, "flags": False}
        e |= {"abs_error": 0.4, "maps": {"dc_correction": corr, "dc_significance": z}, "flagged": False}
    return e


def test_the_table_has_a_row_per_method_and_the_correction_ratio_and_significance_of_learned_ones() -> None:
    bench = _bench()
    lesions = [{"lesion": i} | {"cs": _entry(0.07, False), "varnet": _entry(0.33, True)} for i in range(4)]
    report = {
        "cases": [
            {"pattern": "equispaced", "acceleration": 2.0, "ssim": {"cs": 0.98, "varnet": 0.97}, "lesions": lesions}
        ],
        "models": {"varnet": "hifield-varnet-256 v3"},
        "load_average_before": [0.5, 0.5, 0.5],
    }
    text = bench.markdown(report)
    assert "| equispaced | 2 | cs | 0.9800 | 7 % | 7 % | 7 % | 7 % |" in text
    assert "| equispaced | 2 | varnet | 0.9700 | 33 % / 0.25 (2%), z 2.5 (31%) FAIL |" in text


@pytest.mark.torch
def test_a_training_checkpoint_becomes_weights_the_learned_recon_loads(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from hifield.recon.learned.infer import load_model
    from hifield.recon.learned.nets import build_model

    params = {"cascades": 1, "chans": 4, "levels": 1, "sens_chans": 4}
    model = build_model("varnet", params)
    config = {"model": "varnet", "params": params, "data": {"n_virtual": 4}}
    torch.save({"model": model.state_dict(), "step": 7, "config": config}, tmp_path / "checkpoint.pt")
    kind, path = _bench().as_weights_file(str(tmp_path / "checkpoint.pt"), str(tmp_path))
    loaded, meta = load_model(path)
    assert kind == "varnet" and meta["n_virtual"] == 4 and path.endswith("_step7.pt")
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value)
