"""Training on streamed simulations: it resumes where it stopped, with the same step counter and loss."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hifield.recon.learned.data import DataConfig

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")

from hifield.recon.learned.train import TrainConfig, train  # noqa: E402

TINY = TrainConfig(
    model="varnet",
    params={"cascades": 1, "chans": 4, "levels": 1, "sens_chans": 4},
    data=DataConfig(
        matrix=32, protocols=("gre_t1_2d",), fields=("3T",), coils=(8,), n_virtual=4, n_calibration=8, r_max=4.0
    ),
    steps=4,
    batch_size=2,
    pool_cases=2,
    steps_per_epoch=2,  # the resumed run starts a new epoch: its pool is simulated again, as after a real stop
    val_cases=1,
    val_every=2,
    checkpoint_every=1,
)


def _log(folder: Path) -> list[dict[str, str]]:
    with (folder / "log.csv").open() as f:
        return list(csv.DictReader(f))


def test_training_resumes_at_the_step_it_stopped_with_the_loss_of_an_uninterrupted_run(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    first = train(TINY, out=tmp_path / "a", max_steps=2)  # interrupted after two steps
    assert first["step"] == 2 and (tmp_path / "a" / "checkpoint.pt").is_file()
    resumed = train(TINY, out=tmp_path / "a")
    straight = train(TINY, out=tmp_path / "b")
    assert resumed["step"] == straight["step"] == 4
    a, b = _log(tmp_path / "a"), _log(tmp_path / "b")
    assert [r["step"] for r in a] == ["1", "2", "3", "4"]  # the counter continued, no step repeated or lost
    np.testing.assert_allclose([float(r["loss"]) for r in a], [float(r["loss"]) for r in b], rtol=1e-4)
    assert resumed["val_ssim"] == pytest.approx(straight["val_ssim"], rel=1e-4)
    ma = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["model"]
    mb = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["model"]
    for name in ma:
        torch.testing.assert_close(ma[name], mb[name], rtol=1e-4, atol=1e-6)
    assert (tmp_path / "a" / "curve.png").stat().st_size > 0


def test_without_torch_a_learned_method_is_refused_with_one_line_naming_the_dl_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from hifield.cli.main import main\n"
        "sys.exit(main(['train', '--config', sys.argv[1]]))\n"
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: varnet\n")
    done = subprocess.run([sys.executable, "-c", code, str(cfg)], capture_output=True, text=True)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "hifield[dl]"' in lines[0]


def test_fine_tuning_starts_from_the_init_weights_and_refuses_weights_of_another_size(tmp_path: Path) -> None:
    """``init`` loads a checkpoint's weights into a fresh run (step 0, new optimiser); weights of another model size
    are refused with a ConfigError naming both."""
    from dataclasses import replace

    from hifield.errors import ConfigError
    from hifield.recon.learned.train import initial_weights

    torch.set_num_threads(1)
    train(TINY, out=tmp_path / "a", max_steps=2)
    tuned = replace(TINY, init=str(tmp_path / "a" / "checkpoint.pt"), lr=1e-12)  # a step that cannot move the weights
    train(tuned, out=tmp_path / "b", max_steps=1)
    start = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    after = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert after["step"] == 1 and _log(tmp_path / "b")[0]["step"] == "1"
    for name in start["model"]:
        torch.testing.assert_close(after["model"][name], start["model"][name], rtol=1e-5, atol=1e-7)
    other = replace(TINY, params={**TINY.params, "chans": 6}, init=str(tmp_path / "a" / "checkpoint.pt"))
    with pytest.raises(ConfigError, match="same model and size"):
        initial_weights(other)
    with pytest.raises(ConfigError, match="not found"):
        initial_weights(replace(TINY, init=str(tmp_path / "missing.pt")))


def test_the_lesion_term_adds_the_relative_error_over_the_lesions_times_its_weight() -> None:
    """``loss_of`` with ``lesion_weight``: an image right everywhere but on the lesion pays exactly weight x the
    relative error there; without lesions (or weight 0) the loss is the plain one."""
    from dataclasses import replace

    from hifield.recon.learned.train import loss_of

    target = torch.ones(1, 16, 16)
    lesions = torch.zeros(1, 16, 16)
    lesions[0, 6:9, 6:9] = 1.0
    x = target.clone().to(torch.complex64)
    x[0, 6:9, 6:9] = 0.5  # the lesion lost half its signal
    l1 = replace(TINY, loss="l1", lesion_weight=0.0)
    plain = float(loss_of(l1, x, target, lesions))
    weighted = float(loss_of(replace(l1, lesion_weight=0.2), x, target, lesions))
    assert plain == pytest.approx(9 * 0.5 / 256)
    assert weighted - plain == pytest.approx(0.2 * 0.5)
    assert float(loss_of(replace(l1, lesion_weight=0.2), x, target, torch.zeros_like(lesions))) == pytest.approx(plain)


def test_shipping_recalibrates_shipped_weights_and_keeps_how_they_were_trained(tmp_path: Path) -> None:
    from hifield.recon.learned.infer import calibration_path, load_model
    from hifield.recon.learned.nets import build_model
    from hifield.recon.learned.ship import ship
    from hifield.recon.learned.uncertainty import ACCELERATION_POWERS

    torch.set_num_threads(1)
    model = build_model(TINY.model, dict(TINY.params))
    trained = {
        "name": "hifield-tiny",
        "version": 1,
        "config": TINY.as_dict(),
        "training_command": "hifield train --config tiny.yaml",
        "commit": "abc",
        "training_commits": ["abc"],
        "trained_steps": 4,
        "final_loss": 0.5,
        "val_ssim": 0.6,
        "conformal_lambda": 1.0,  # from an older calibration, to be replaced
    }
    old = tmp_path / "old.pt"
    torch.save({"kind": TINY.model, "params": dict(TINY.params), "model": model.state_dict(), "metadata": trained}, old)
    path = ship(old, n_calibration=9, n_test=2, n_tune=3, version=2, out=tmp_path / "new.pt")
    # the network file is copied as it was; the new calibration lies beside it and is read with it
    assert path.read_bytes() == old.read_bytes() and calibration_path(path).is_file()
    assert torch.load(path, weights_only=False)["metadata"]["conformal_lambda"] == 1.0
    new, meta = load_model(str(path))
    # the width's acceleration power was chosen on tuning images of its own, and the coverage is recorded by R
    assert meta["conformal_n_tune"] == 3 and meta["conformal_acceleration_power"] in ACCELERATION_POWERS
    assert set(meta["conformal_tune_spreads"]) == {str(p) for p in ACCELERATION_POWERS}
    assert sum(n for _, n in meta["conformal_test_coverage_by_acceleration"].values()) == 2
    ranges = meta["conformal_test_coverage_p10_p90_by_acceleration"]
    assert set(ranges) == set(meta["conformal_test_coverage_by_acceleration"])
    assert all(0 <= lo <= hi <= 1 for lo, hi in ranges.values())
    for key in ("name", "training_command", "commit", "trained_steps", "val_ssim", "config"):
        assert meta[key] == trained[key]
    assert meta["version"] == 2 and meta["conformal_n_calibration"] == 9 and meta["conformal_n_test"] == 2
    assert "risk control" in meta["conformal_method"] and "dc_correction" in meta["conformal_width"]
    assert 0 < meta["conformal_lambda"] < np.inf and meta["conformal_lambda"] != 1.0
    assert 0 <= meta["conformal_test_coverage"] <= 1
    for name, value in model.state_dict().items():
        torch.testing.assert_close(new.state_dict()[name], value)
    # a training checkpoint is written whole and takes the place of the calibration file of the weights before it
    checkpoint = {"model": model.state_dict(), "config": TINY.as_dict(), "step": 4, "loss": 0.5, "val_ssim": 0.6}
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    ship(
        tmp_path / "checkpoint.pt",
        command="hifield train --config tiny.yaml",
        n_calibration=9,
        n_test=2,
        n_tune=0,
        out=path,
    )
    assert not calibration_path(path).exists()
    assert torch.load(path, weights_only=False)["metadata"]["conformal_n_tune"] == 0
    with pytest.raises(ValueError, match="training command"):  # a training checkpoint must say how it was trained
        ship(tmp_path / "checkpoint.pt", n_calibration=9, n_test=2, out=tmp_path / "x.pt")


def test_a_calibration_file_made_for_other_weights_or_unreadable_is_refused(tmp_path: Path) -> None:
    from hifield.errors import ConfigError
    from hifield.recon.learned.infer import calibration_path, load_model, weights_digest
    from hifield.recon.learned.nets import build_model

    model = build_model(TINY.model, dict(TINY.params))
    path = tmp_path / "w.pt"
    meta = {"name": "hifield-tiny", "version": 1, "conformal_lambda": 1.0}
    torch.save({"kind": TINY.model, "params": dict(TINY.params), "model": model.state_dict(), "metadata": meta}, path)
    side = calibration_path(path)
    side.write_text(json.dumps({"weights_sha256": weights_digest(model.state_dict()), "metadata": {"version": 3}}))
    assert load_model(str(path))[1]["version"] == 3 and load_model(str(path))[1]["conformal_lambda"] == 1.0
    other = build_model(TINY.model, dict(TINY.params))  # other random weights, same file name
    torch.save({"kind": TINY.model, "params": dict(TINY.params), "model": other.state_dict(), "metadata": meta}, path)
    load_model.cache_clear()
    with pytest.raises(ConfigError, match="made for other weights"):
        load_model(str(path))
    side.write_text("{not json")
    load_model.cache_clear()
    with pytest.raises(ConfigError, match="not valid"):
        load_model(str(path))
    load_model.cache_clear()


def test_scored_cases_are_kept_in_the_cache_and_read_back_without_simulating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hifield.recon.learned import ship as ship_module
    from hifield.recon.learned.nets import build_model

    torch.set_num_threads(1)
    model = build_model(TINY.model, dict(TINY.params)).eval()
    first = ship_module.scored_cases(model, TINY, 2, 5, cache=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["5-00000.npz", "5-00001.npz"]
    alone = ship_module.scored_cases(model, TINY, 1, 5)  # case 0 does not depend on how many are drawn
    for a, b in zip(first[0][:3], alone[0][:3], strict=True):
        np.testing.assert_array_equal(a, b)

    def no_simulation(*args: object, **kwargs: object) -> None:
        raise AssertionError("simulated a case that was in the cache")

    monkeypatch.setattr(ship_module, "simulate_case", no_simulation)
    again = ship_module.scored_cases(model, TINY, 2, 5, cache=tmp_path)
    for case, kept in zip(first, again, strict=True):
        for a, b in zip(case[:3], kept[:3], strict=True):
            np.testing.assert_array_equal(a, b)
        assert case[3] == kept[3]
