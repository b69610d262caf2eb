"""Running a shipped learned model on an encoding problem, slice by slice, with its uncertainty maps.

The weights live in ``hifield/recon/learned/weights/<model>_small.pt``: the state dict, the model's size
parameters, and metadata (training command, config, git commit, conformal factor). :func:`reconstruct_learned` is
what the registry's ``varnet`` and ``modl`` entries run.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError, ReconstructionError
from hifield.recon.learned import LearnedConfig, require_torch

WEIGHTS = Path(__file__).parent / "weights"
Complex = NDArray[np.complex64]


def weights_path(kind: str) -> Path:
    """Path of the shipped weights of ``kind`` (``varnet`` or ``modl``)."""
    return WEIGHTS / f"{kind}_small.pt"


def calibration_path(weights: Path) -> Path:
    """The calibration file beside ``weights``: ``<name>.calibration.json``. A re-calibration of shipped weights
    (:mod:`~hifield.recon.learned.ship`) writes its conformal factor, coverage and version there instead of saving
    the unchanged network again; :func:`load_model` lays it over the metadata inside the weights."""
    return weights.with_name(weights.stem + ".calibration.json")


def weights_digest(state_dict: Any) -> str:
    """SHA-256 of a network's tensors (names and bytes, in name order): what a calibration file was made for."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(state_dict):
        h.update(name.encode())
        h.update(state_dict[name].detach().cpu().numpy().tobytes())
    return h.hexdigest()


def read_calibration(weights: Path, state_dict: Any) -> dict[str, Any]:
    """The metadata of the calibration file beside ``weights`` (empty when there is none), after checking that it
    was made for the network ``state_dict``. Raises :class:`~hifield.errors.ConfigError` for a file that is not
    valid or belongs to other weights."""
    import json

    side = calibration_path(weights)
    if not side.is_file():
        return {}
    try:
        cal = json.loads(side.read_text())
        digest, meta = cal["weights_sha256"], dict(cal["metadata"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"calibration file {side} is not valid ({exc}); delete it or re-run the calibration") from exc
    if digest != weights_digest(state_dict):
        raise ConfigError(
            f"calibration file {side} was made for other weights than {weights}; "
            f"re-run `python -m hifield.recon.learned.ship {weights}` or delete it"
        )
    return meta


@functools.lru_cache(maxsize=4)
def load_model(path: str) -> tuple[Any, dict[str, Any]]:
    """The model in ``path`` (in eval mode) and its metadata, with the calibration file beside it laid over
    (:func:`calibration_path`); cached per path."""
    torch = require_torch()
    from hifield.recon.learned.nets import build_model

    if not Path(path).is_file():
        raise ConfigError(f"learned model weights {path!r} not found; reinstall hifield or pass an existing file")
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(state["kind"], state["params"])
    model.load_state_dict(state["model"])
    model.eval()
    return model, {**state["metadata"], **read_calibration(Path(path), state["model"])}


def model_label(meta: dict[str, Any]) -> str:
    """``"<model> <version>"`` as named in DICOM and reports, e.g. ``"hifield-varnet-small v1 (git 1a2b3c4)"``."""
    return f"{meta['name']} v{meta['version']} (git {str(meta.get('commit', ''))[:7]})"


def acs_bounds(lines: NDArray[np.bool_]) -> tuple[int, int]:
    """The fully sampled run of phase-encode lines around the centre, as ``(start, stop)`` (stop exclusive)."""
    n = lines.size
    lo = hi = n // 2
    while lo > 0 and lines[lo - 1]:
        lo -= 1
    while hi < n - 1 and lines[hi + 1]:
        hi += 1
    return lo, hi + 1


class SliceResult(NamedTuple):
    """What :func:`run_slice` gives for one slice."""

    image: Complex
    """Complex image ``(h, w)`` in the units of the data."""
    kspace: Complex
    """Virtual-coil k-space ``(v, h, w)`` the model saw (unscaled; coils beyond the physical ones are zero)."""
    maps: Complex
    """Virtual-coil maps ``(v, h, w)`` the model used."""
    compression: Complex
    """Coil compression ``(coil, v')``, ``v' <= v``: virtual coil ``j`` is ``sum_c conj(u[c, j]) y_c``."""

    def noise_covariance(self, physical: NDArray[np.complexfloating]) -> NDArray[np.complex128]:
        """The virtual coils' noise covariance ``(v, v)`` from the physical coils' ``(coil, coil)`` (zero for
        padding coils)."""
        u = np.asarray(self.compression, dtype=np.complex128)
        out = np.zeros((self.kspace.shape[0],) * 2, np.complex128)
        out[: u.shape[1], : u.shape[1]] = u.conj().T @ np.asarray(physical) @ u
        return out


def run_slice(kind: str, model: Any, y: Complex, mask: NDArray[Any], n_virtual: int) -> SliceResult:
    """Reconstruct one slice: coil k-space ``y`` ``(coil, h, w)``, mask ``(h, w)``; see :class:`SliceResult`."""
    torch = require_torch()
    from hifield.recon.compression import svd_compression_matrix
    from hifield.recon.learned.data import data_scale
    from hifield.recon.learned.train import espirit_batch

    u = svd_compression_matrix(y, min(n_virtual, y.shape[0]))
    yv = np.einsum("cv,c...->v...", np.conj(u), y).astype(np.complex64)
    if yv.shape[0] < n_virtual:  # fewer physical coils than the model's channels: pad with empty coils
        yv = np.concatenate([yv, np.zeros((n_virtual - yv.shape[0], *yv.shape[1:]), np.complex64)])
    scale = data_scale(yv)
    m = np.asarray(mask, dtype=np.float32)
    t_y = torch.from_numpy(yv / scale)[None]
    t_m = torch.from_numpy(m)[None, None]
    with torch.no_grad():
        if kind == "varnet":
            x, _, maps = model(t_y, t_m)
            maps_np = maps[0].numpy()
        else:
            maps_np = espirit_batch(yv[None] / scale, m[None, None])[0]
            x = model(t_y, t_m, torch.from_numpy(maps_np)[None])
    return SliceResult((x[0].numpy() * scale).astype(np.complex64), yv, maps_np.astype(np.complex64), u)


def reconstruct_learned(kind: str, problem: Any, config: LearnedConfig) -> tuple[Complex, dict[str, NDArray[Any]]]:
    """The registry's entry: image ``(1, z, y, x)`` of the problem's current frame and its uncertainty maps.

    Each slice (after an inverse FFT along k2 for 3D data) is reconstructed by the model. The extras, each
    ``(1, z, y, x)`` float32: ``dc_residual_kspace`` and ``dc_residual_image`` (RSS over the virtual coils of
    ``M (F S x - y)``, in k-space and image space), ``dc_correction`` (signed: what the data would add to ``|x|``,
    see :func:`~hifield.recon.learned.uncertainty.dc_correction`), ``dc_significance`` (signed, in standard
    deviations of the receive noise: how strongly the data say a small blob is missing (+) or invented (-) at each
    pixel, see :func:`~hifield.recon.learned.uncertainty.dc_significance`; the noise from the data's noise scan, else
    estimated from the corners of k-space, which counts any signal there as noise and so gives a lower value),
    ``null_space`` (``|x - E^+ E x|``, the hallucination map), ``conformal_lower`` / ``conformal_upper`` (the
    calibrated 90 % interval of ``|x|``).
    """
    from hifield.ops.fft import ifftc
    from hifield.recon.learned import uncertainty as unc

    if problem.nufft is not None:
        raise ReconstructionError(f"{kind} reconstructs Cartesian data only")
    model, meta = load_model(config.weights or str(weights_path(kind)))
    y = np.asarray(problem.y)  # (coil, k2, k1, k0)
    mask3 = np.broadcast_to(np.asarray(problem.mask), y.shape[1:])
    if y.shape[1] > 1:
        y = ifftc(y, axes=(1,)).astype(np.complex64)  # hybrid space: one 2D problem per partition
    out = np.zeros((1, *y.shape[1:]), dtype=np.complex64)
    names = (
        "dc_residual_kspace",
        "dc_residual_image",
        "dc_correction",
        "dc_significance",
        "null_space",
        "conformal_lower",
        "conformal_upper",
    )
    extras = {name: np.zeros(out.shape, dtype=np.float32) for name in names}
    lam = float(meta.get("conformal_lambda", np.inf))
    width_terms = meta.get("conformal_width", ("null_space", "dc_residual_image"))  # as the weights were calibrated
    power = float(meta.get("conformal_acceleration_power", 0.0))
    noise = None
    if problem.noise is not None:
        from hifield.recon.whitening import scan_covariance

        noise = scan_covariance(problem.noise, y.shape[0])  # a noise scan of other channels is refused
    for z in range(y.shape[1]):
        mask = mask3[z] if mask3.shape[0] > 1 else mask3[0]
        mask = np.broadcast_to(mask.any(axis=-1, keepdims=True), mask.shape).astype(np.float32)  # k1 lines
        result = run_slice(kind, model, y[:, z], mask, int(meta["n_virtual"]))
        x, yv, maps = result.image, result.kspace, result.maps
        out[0, z] = x
        if not config.uncertainty:
            continue
        res_k, res_i = unc.dc_residual(x, yv, maps, mask)
        correction = unc.dc_correction(x, yv, maps, mask, n_iter=config.correction_iter)
        psi = None if noise is None else result.noise_covariance(noise)
        significance = unc.dc_significance(x, yv, maps, mask, noise_covariance=psi)
        null = unc.null_space_component(x, maps, mask, n_iter=config.null_space_iter)
        width = unc.heuristic_width(
            x,
            null,
            res_i,
            correction if "dc_correction" in width_terms else None,
            acceleration=float(1.0 / max(float(mask.mean()), 1e-12)),
            acceleration_power=power,
        )
        lower, upper = unc.interval(np.abs(x).astype(np.float32), width, lam)
        values = (res_k, res_i, correction, significance, np.abs(null), lower, upper)
        for name, value in zip(names, values, strict=True):
            extras[name][0, z] = value
    return out, extras if config.uncertainty else {}


def describe(kind: str, config: LearnedConfig) -> str:
    """The ImageComments text of a learned image: AI-reconstructed, model and version, what the extras mean."""
    _, meta = load_model(config.weights or str(weights_path(kind)))
    return (
        f"AI-reconstructed by {model_label(meta)}, trained on hifield simulations; "
        "see the NIfTI extras: data-consistency residual and correction, null-space (hallucination) map, "
        "90% conformal interval"
    )
