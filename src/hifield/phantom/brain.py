"""Anatomical brain phantom from the MNI ICBM152 2009 templates shipped inside nilearn's wheel (offline).

The templates (1 mm, nonlinear symmetric 2009a; Fonov et al., NeuroImage 2011;54:313) give partial-volume grey-
and white-matter maps and a skull-stripped T1. Tissue fractions per voxel:

* brain = the T1 template above 20 % of its maximum (nilearn's brain-mask rule) with enclosed holes (ventricles)
  filled; GM and WM from the probability maps; CSF = clip(brain - GM - WM).
* outside the brain, shells at a signed distance ``d`` [mm] from the brain surface: CSF (subarachnoid, d <= 2),
  skull outer/inner tables (bone, 2-4.5 and 6.5-9) with fatty diploë (marrow, 4.5-6.5), galea/muscle (9-12),
  subcutaneous fat (12-16) and skin (modelled as muscle, 16-18). The shipped T1 is skull-stripped, so the head
  outline is the brain surface dilated by 18 mm (scalp and skull ~ 1.5-2 cm thick).
* off-resonance: a second-order shim residual (0.05 ppm at 8 cm) plus smooth field offsets near the air-filled
  sinuses and ear canals (a Gaussian model of each, ~1 ppm peak), in ppm times γ̄ B0.

The phantom is centred on the head: the centre of the head's bounding box sits at the isocentre.

A single slice samples the template directly (sub-sampled across the voxel and the slice thickness); a 3D volume
is resampled (box pre-filter + trilinear) from a cached 1 mm tissue atlas built once from the same rules.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield._interp import sample_linear
from hifield.errors import ConfigError
from hifield.phantom.phantom import Phantom, check_memory
from hifield.phantom.tissues import check_field, tissue_properties
from hifield.units import GAMMA_BAR_HZ_PER_T

BRAIN_TISSUES: tuple[str, ...] = ("gm", "wm", "csf", "fat", "muscle", "bone")
"""Tissues of the brain phantom, in fraction order."""

_PLANES = ("axial", "coronal", "sagittal")
_DEFAULT_SLICE_MNI_MM = {"axial": 16.0, "coronal": -10.0, "sagittal": 6.0}
"""Default slice positions in MNI coordinates [mm]: axial z through the lateral ventricles' bodies, coronal y
through the thalamus and ventricles, sagittal 6 mm left of the midline (paramedian: corpus callosum, cortex)."""

# Shells outside the brain: (tissue, inner distance, outer distance) [mm]
_SHELLS: tuple[tuple[str, float, float], ...] = (
    ("csf", -math.inf, 2.0),
    ("bone", 2.0, 4.5),
    ("fat", 4.5, 6.5),
    ("bone", 6.5, 9.0),
    ("muscle", 9.0, 12.0),
    ("fat", 12.0, 16.0),
    ("muscle", 16.0, 18.0),
)
_HEAD_MM = 18.0

# Air cavities (MNI RAS mm centre, width mm, peak ppm): frontal sinus, sphenoid sinus, ear canals
_AIR_CAVITIES: tuple[tuple[tuple[float, float, float], float, float], ...] = (
    ((0.0, 62.0, 2.0), 10.0, 1.0),
    ((0.0, 12.0, -30.0), 12.0, 1.0),
    ((58.0, -22.0, -38.0), 9.0, 0.8),
    ((-58.0, -22.0, -38.0), 9.0, 0.8),
)
_ATLAS_PAD_K = 24  # 1 mm voxels of the 3D atlas below the template box (shells under the brainstem)
_COARSE = 2  # the signed distance is computed on a 2 mm grid
_PAD = 15  # coarse voxels of padding around the template box


@dataclass(frozen=True, eq=False)
class _Template:
    gm: NDArray[np.uint8]
    wm: NDArray[np.uint8]
    brain: NDArray[np.uint8]
    dist_mm: NDArray[np.float32]
    """Signed distance to the brain surface on the padded 2 mm grid [mm] (positive outside)."""
    ras_to_index: NDArray[np.float64]
    """4 x 4 map from MNI RAS mm to template index (i, j, k)."""
    head_centre_ras_mm: NDArray[np.float64]


def _data_dir() -> str:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the brain phantom needs nilearn (its MNI152 templates); pip install nilearn")
    return os.path.join(next(iter(spec.submodule_search_locations)), "datasets", "data")


def _build_template(paths: dict[str, str]) -> _Template:
    """Read the MNI152 T1/GM/WM templates and derive the brain mask and the signed distance (about 0.6 s)."""
    import nibabel as nib
    from scipy import ndimage

    vols = {}
    affine = None
    for key, path in paths.items():
        img: Any = nib.load(path)
        vols[key] = np.asarray(img.dataobj)
        affine = np.asarray(img.affine, dtype=np.float64)
    assert affine is not None
    t1 = vols["t1"].astype(np.float32)
    t1 /= float(t1.max())
    mask = t1 > 0.2
    coarse = ndimage.binary_fill_holes(mask[::_COARSE, ::_COARSE, ::_COARSE])
    up = np.repeat(np.repeat(np.repeat(coarse, _COARSE, 0), _COARSE, 1), _COARSE, 2)
    brain = mask | up[: mask.shape[0], : mask.shape[1], : mask.shape[2]]
    padded = np.pad(coarse, _PAD)
    # distance outside the brain only (inside, the value -1 mm just means "CSF shell side of the surface")
    dist = ndimage.distance_transform_edt(~padded) * _COARSE
    dist = (dist - 0.5 * _COARSE).astype(np.float32)  # voxel-centre distance -> surface distance
    head = np.argwhere(dist <= _HEAD_MM)
    lo, hi = head.min(axis=0), head.max(axis=0)
    centre_idx = ((lo + hi) / 2.0 - _PAD) * _COARSE
    centre_ras = (affine @ np.append(centre_idx, 1.0))[:3]
    to_index = np.linalg.inv(affine)
    to_u8 = lambda v: np.clip(np.asarray(v, np.float32) / max(float(np.max(v)), 1e-12) * 255 + 0.5, 0, 255)  # noqa: E731
    return _Template(
        gm=to_u8(vols["gm"]).astype(np.uint8),
        wm=to_u8(vols["wm"]).astype(np.uint8),
        brain=(brain.astype(np.uint8) * 255),
        dist_mm=dist,
        ras_to_index=np.asarray(to_index, dtype=np.float64),
        head_centre_ras_mm=centre_ras,
    )


_TEMPLATE_CACHE_VERSION = 1
"""Bump when :func:`_build_template` changes what it derives: older cache files are then ignored."""


def cache_dir() -> Path | None:
    """Folder for data hifield derives once per machine: ``HIFIELD_CACHE_DIR``, else ``$XDG_CACHE_HOME/hifield``
    or ``~/.cache/hifield``; ``None`` (no cache) when ``HIFIELD_CACHE_DIR`` is set to an empty string."""
    chosen = os.environ.get("HIFIELD_CACHE_DIR")
    if chosen is not None:
        return Path(chosen).expanduser() if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hifield"


def _template_cache_file(paths: dict[str, str]) -> Path | None:
    """The cache file of the derived template for these template files (their size and time in its name)."""
    folder = cache_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(repr((_TEMPLATE_CACHE_VERSION, _COARSE, _PAD, _HEAD_MM)).encode())
    for key, path in paths.items():
        info = os.stat(path)
        digest.update(f"{key}:{info.st_size}:{info.st_mtime_ns}".encode())
    return folder / f"brain_template_{digest.hexdigest()[:16]}.npz"


_TEMPLATE_FIELDS = ("gm", "wm", "brain", "dist_mm", "ras_to_index", "head_centre_ras_mm")


def _read_cached_template(path: Path) -> _Template | None:
    """The template saved at ``path``; ``None`` when it is missing, unreadable or not what this version writes.

    The large volumes are memory-mapped from the (uncompressed) archive rather than read: a slice samples a few
    megabytes of the 26 MB, and a process that simulates one slice does not pay for the rest.
    """
    try:
        arrays = {name: _archive_member(path, name) for name in _TEMPLATE_FIELDS}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    shapes_ok = arrays["gm"].shape == arrays["wm"].shape == arrays["brain"].shape and arrays["gm"].ndim == 3
    types_ok = all(arrays[n].dtype == np.uint8 for n in ("gm", "wm", "brain")) and arrays["dist_mm"].ndim == 3
    if not (shapes_ok and types_ok and arrays["ras_to_index"].shape == (4, 4)):
        return None
    return _Template(**arrays)


def _archive_member(path: Path, name: str) -> NDArray[Any]:
    """Array ``name`` of the ``.npz`` at ``path``: memory-mapped when stored uncompressed (as :func:`np.savez`
    writes), read otherwise; small arrays are always read."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = reader(member)
            header_bytes = member.tell()
            if info.compress_type != zipfile.ZIP_STORED or dtype.hasobject or info.file_size < 1 << 16:
                member.seek(0)
                return np.array(np.lib.format.read_array(member, allow_pickle=False))
    with open(path, "rb") as handle:  # the member's data start: its local header, then the .npy header
        handle.seek(info.header_offset)
        local = handle.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"{name}: bad local header")
        data_start = (
            info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
        )
    expected = header_bytes + math.prod(shape) * dtype.itemsize
    if info.file_size != expected or data_start + info.file_size > os.path.getsize(path):
        raise ValueError(f"{name}: {info.file_size} bytes stored for {expected}")
    mapped = np.memmap(
        path, dtype=dtype, mode="r", offset=data_start + header_bytes, shape=shape, order="F" if fortran_order else "C"
    )
    return np.asarray(mapped)  # a plain array over the mapping (it stays open while the array lives)


def _write_cached_template(path: Path, template: _Template) -> None:
    """Save ``template`` at ``path`` (atomically); a cache that cannot be written is skipped silently."""
    from hifield._atomic import atomic_path

    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **{name: getattr(template, name) for name in _TEMPLATE_FIELDS})
    except OSError:
        pass


@functools.lru_cache(maxsize=1)
def _template() -> _Template:
    """The derived MNI152 template, from the per-machine cache when it holds it (see :func:`cache_dir`)."""
    root = _data_dir()
    paths = {}
    for key in ("t1", "gm", "wm"):
        path = os.path.join(root, f"mni_icbm152_{key}_tal_nlin_sym_09a_converted.nii.gz")
        if not os.path.exists(path):
            raise ConfigError(f"MNI152 template {path} is missing; reinstall nilearn (>= 0.10)")
        paths[key] = path
    cache_file = _template_cache_file(paths)
    if cache_file is not None:
        cached = _read_cached_template(cache_file)
        if cached is not None:
            return cached
    template = _build_template(paths)
    if cache_file is not None:
        _write_cached_template(cache_file, template)
    return template


@functools.lru_cache(maxsize=1)
def _atlas() -> NDArray[np.uint8]:
    """Tissue fractions on the template's own 1 mm grid, ``(tissue, i, j, k)`` in 1/255 (built once, ~50 MB).

    Used for 3D volumes: resampling these maps is much faster than sampling the template at every sub-voxel.
    The grid is padded by :data:`_ATLAS_PAD_K` voxels below the template box so the shells under the brainstem
    are kept; atlas index ``(i, j, k + pad)`` is template index ``(i, j, k)``.
    """
    from scipy import ndimage

    tpl = _template()
    pad = _ATLAS_PAD_K
    shape = (tpl.gm.shape[0], tpl.gm.shape[1], tpl.gm.shape[2] + pad)
    # signed distance on the 1 mm grid: fine index i <-> coarse index i / 2 + pad
    dist = ndimage.affine_transform(
        tpl.dist_mm,
        np.full(3, 1.0 / _COARSE),
        offset=np.array([_PAD, _PAD, _PAD - pad / _COARSE], dtype=np.float64),
        output_shape=shape,
        order=1,
        mode="nearest",
        output=np.float32,
    )

    gm, wm, brain = (np.pad(v, ((0, 0), (0, 0), (pad, 0))) for v in (tpl.gm, tpl.wm, tpl.brain))
    index_of = {t: i for i, t in enumerate(BRAIN_TISSUES)}
    out = np.zeros((len(BRAIN_TISSUES), *shape), dtype=np.uint8)
    scale = np.float32(1.0 / 255.0)
    for k0 in range(0, shape[2], 32):  # in slabs, to bound the temporaries
        sl = np.s_[:, :, k0 : k0 + 32]
        fr = _fractions_from_maps(gm[sl] * scale, wm[sl] * scale, brain[sl] * scale, dist[sl], index_of)
        out[(slice(None), *sl)] = np.clip(fr * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def _ramp(t: NDArray[np.float32]) -> NDArray[np.float32]:
    """Partial-volume step of 1 mm width: 0 below -0.5 mm, 1 above +0.5 mm."""
    return np.clip(t + 0.5, 0.0, 1.0)


def _plane_axes(plane: str) -> NDArray[np.float64]:
    """Unit vectors (LPS, (z, y, x) order) of the slice, row and column axes, as columns."""
    if plane == "axial":  # slices along S, rows towards P, columns towards L
        return np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]).T
    if plane == "coronal":  # slices along P, rows towards I, columns towards L
        return np.array([[0, 1.0, 0], [-1.0, 0, 0], [0, 0, 1.0]]).T
    return np.array([[0, 0, 1.0], [-1.0, 0, 0], [0, 1.0, 0]]).T  # sagittal: along L, rows to I, columns to P


def brain_phantom(
    *,
    b0_t: float = 3.0,
    matrix: int = 256,
    fov_m: float = 0.24,
    plane: str = "axial",
    slice_position_m: float | None = None,
    n_slices: int = 1,
    oversampling: int = 1,
    slice_thickness_m: float | None = None,
    off_resonance: bool = True,
) -> Phantom:
    """An anatomical head phantom (brain from MNI ICBM152 2009, synthetic skull and scalp).

    Parameters
    ----------
    b0_t
        Main field [T] (0.1-11.7).
    matrix
        In-plane matrix before oversampling.
    fov_m
        Square in-plane field of view [m].
    plane
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    slice_position_m
        Through-plane position of the (central) slice [m] in the isocentred patient frame (LPS along the slice
        axis). Default: an axial slice through the lateral ventricles (coronal: thalamus; sagittal: near midline)
        for one slice, the head centre for several.
    n_slices
        Number of slices; > 1 gives a 3D volume.
    oversampling
        In-plane oversampling factor: ``matrix * oversampling`` points over ``fov_m``.
    slice_thickness_m
        Slice thickness / spacing [m]; default 3 mm for one slice, the in-plane voxel size (isotropic) for several.
        Each voxel averages the template over its extent (up to 4 x 4 x 4 sub-samples: partial volume).
    off_resonance
        Include the B0 inhomogeneity model (otherwise zero).

    Returns
    -------
    Phantom
        Tissues ``("gm", "wm", "csf", "fat", "muscle", "bone")``, shape ``(n_slices, N, N)``.

    Raises
    ------
    ConfigError
        Bad sizes, an unknown plane, a field outside 0.1-11.7 T, or a grid too large for this machine.

    Examples
    --------
    >>> p = brain_phantom(matrix=64)
    >>> p.shape, p.tissue_names[:3]
    ((1, 64, 64), ('gm', 'wm', 'csf'))
    """
    b0 = check_field(b0_t)
    if plane not in _PLANES:
        raise ConfigError(f"unknown plane {plane!r}; choose one of {', '.join(_PLANES)}")
    if int(matrix) != matrix or matrix < 8 or int(oversampling) != oversampling or oversampling < 1:
        raise ConfigError(f"matrix ({matrix}) must be an integer >= 8 and oversampling ({oversampling}) >= 1")
    if int(n_slices) != n_slices or n_slices < 1:
        raise ConfigError(f"number of slices must be an integer >= 1; got {n_slices}")
    if not 0.05 <= fov_m <= 0.6:
        raise ConfigError(f"field of view {fov_m} m is outside 0.05-0.6 m; a head needs about 0.24 m")
    n = int(matrix) * int(oversampling)
    nz = int(n_slices)
    dxy = fov_m / n
    thickness = slice_thickness_m if slice_thickness_m is not None else (0.003 if nz == 1 else dxy)
    # sub-samples per voxel edge: about one per template millimetre, at most 4 (partial volume of large voxels)
    n_sub_z = min(4, max(1, math.ceil(max(thickness, 1e-4) / 1e-3 - 1e-9)))
    n_sub_xy = min(4, max(1, math.ceil(dxy / 1e-3 - 1e-9)))
    n_points = nz * n * n * n_sub_z * n_sub_xy**2
    check_memory(4.0 * n * n * nz * (len(BRAIN_TISSUES) + 2) + 8.0 * 12 * min(n_points, n * n * 8), what="brain")
    if not 1e-4 <= thickness <= 0.05:
        raise ConfigError(f"slice thickness {thickness * 1e3:.3g} mm is outside 0.1-50 mm; change the slice spacing")

    tpl = _template()
    axes = _plane_axes(plane)  # columns: slice, row, column directions (LPS zyx)
    centre_lps = _ras_to_lps(tpl.head_centre_ras_mm) * 1e-3  # head centre, LPS zyx [m]
    if slice_position_m is None:
        if nz == 1:
            pos_mni = np.zeros(3)
            if plane == "axial":
                pos_mni[2] = _DEFAULT_SLICE_MNI_MM["axial"]
            elif plane == "coronal":
                pos_mni[1] = _DEFAULT_SLICE_MNI_MM["coronal"]
            else:
                pos_mni[0] = -_DEFAULT_SLICE_MNI_MM["sagittal"]  # RAS x = -LPS x
            pos_iso = _ras_to_lps(pos_mni) * 1e-3 - centre_lps
            slice_position_m = float(axes[:, 0] @ pos_iso)
        else:
            slice_position_m = 0.0

    affine = np.eye(4)
    affine[:3, :3] = axes * np.array([thickness, dxy, dxy])[None, :]
    origin_idx = np.array([(nz - 1) / 2.0, n // 2, n // 2])
    affine[:3, 3] = axes[:, 0] * slice_position_m - affine[:3, :3] @ origin_idx

    fractions = np.zeros((len(BRAIN_TISSUES), nz, n, n), dtype=np.float32)
    sub_z = (np.arange(n_sub_z) + 0.5) / n_sub_z - 0.5
    sub_xy = (np.arange(n_sub_xy) + 0.5) / n_sub_xy - 0.5
    rows = np.arange(n, dtype=np.float64)
    index_of = {t: i for i, t in enumerate(BRAIN_TISSUES)}
    # in-plane sub-sample positions (index units), vectorised: (n * n_sub_xy,) per axis
    fine = (rows[:, None] + sub_xy[None, :]).ravel()
    if nz > 1:
        fractions = _resample_atlas(affine, (nz, n, n), centre_lps)
    for k in range(nz if nz == 1 else 0):
        acc = np.zeros((len(BRAIN_TISSUES), n, n), dtype=np.float64)
        for oz in sub_z:
            pos = (
                affine[:3, 0][:, None, None] * (k + oz)
                + affine[:3, 1][:, None, None] * fine[None, :, None]
                + affine[:3, 2][:, None, None] * fine[None, None, :]
                + affine[:3, 3][:, None, None]
            )  # (3, n * s, n * s) LPS zyx, isocentred [m]
            sampled = _sample_fractions(tpl, pos, centre_lps, index_of)
            acc += sampled.reshape(len(BRAIN_TISSUES), n, n_sub_xy, n, n_sub_xy).sum(axis=(2, 4))
        fractions[:, k] = (acc / (n_sub_z * n_sub_xy**2)).astype(np.float32)
    total = fractions.sum(axis=0)
    fractions = np.where(total > 1.0, fractions / np.maximum(total, 1e-12), fractions).astype(np.float32)

    if off_resonance:
        off = _off_resonance_hz(affine, (nz, n, n), centre_lps, b0)
    else:
        off = np.zeros((nz, n, n), dtype=np.float32)
    tissues = tuple(tissue_properties(t, b0) for t in BRAIN_TISSUES)
    name = f"MNI152 brain ({plane}, {nz} slice{'s' if nz > 1 else ''})"
    return Phantom(fractions=fractions, tissues=tissues, off_resonance_hz=off, affine=affine, b0_t=b0, name=name)


def _resample_atlas(
    affine: NDArray[np.float64], shape: tuple[int, int, int], centre_lps_m: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Tissue fractions on a 3D output grid from the 1 mm atlas: box pre-filter over the voxel, then trilinear."""
    from scipy import ndimage

    atlas = _atlas()
    tpl = _template()
    # output index -> isocentred LPS (z, y, x) [m] -> MNI LPS [mm] -> RAS (x, y, z) [mm] -> template index
    to_mni = np.eye(4)
    to_mni[:3, 3] = centre_lps_m
    lps_to_ras_mm = np.zeros((4, 4))
    lps_to_ras_mm[0, 2] = -1e3  # x_R = -x_L
    lps_to_ras_mm[1, 1] = -1e3  # y_A = -y_P
    lps_to_ras_mm[2, 0] = 1e3  # z_S = z_S
    lps_to_ras_mm[3, 3] = 1.0
    to_atlas = np.eye(4)
    to_atlas[2, 3] = _ATLAS_PAD_K
    m = to_atlas @ tpl.ras_to_index @ lps_to_ras_mm @ to_mni @ affine
    lin = m[:3, :3]
    perm = np.argmax(np.abs(lin), axis=0)  # template axis feeding each output axis
    aligned = sorted(perm.tolist()) == [0, 1, 2] and np.allclose(
        lin, np.eye(3)[:, perm] * lin[perm, [0, 1, 2]][None, :], atol=1e-9
    )
    out = np.empty((atlas.shape[0], *shape), dtype=np.float32)
    for t in range(atlas.shape[0]):
        vol = atlas[t].astype(np.float32) / np.float32(255)
        if aligned:
            # axis-aligned grid: permute/flip the template so the map is diagonal (fast zoom path of scipy)
            vol = vol.transpose(perm)
            scale = lin[perm, [0, 1, 2]].copy()
            offset = m[perm, 3].copy()
            for j in range(3):
                if scale[j] < 0:
                    vol = np.flip(vol, axis=j)
                    offset[j] = vol.shape[j] - 1 - offset[j]
                    scale[j] = -scale[j]
            vol = np.ascontiguousarray(vol)
            size = np.where(scale > 1.5, np.round(scale), 1).astype(int)
            if size.max() > 1:
                vol = ndimage.uniform_filter(vol, size=tuple(int(v) for v in size), mode="constant")
                offset = offset + np.where(size % 2 == 0, 0.5, 0.0)  # even windows are centred half a voxel early
            out[t] = ndimage.affine_transform(
                vol, scale, offset=offset, output_shape=shape, order=1, mode="constant", cval=0.0
            )
        else:
            per_axis = np.abs(lin).sum(axis=1)
            size = np.where(per_axis > 1.5, np.round(per_axis), 1).astype(int)
            shift = np.where(size % 2 == 0, 0.5, 0.0)
            if size.max() > 1:
                vol = ndimage.uniform_filter(vol, size=tuple(int(v) for v in size), mode="constant")
            out[t] = ndimage.affine_transform(
                vol, lin, offset=m[:3, 3] + shift, output_shape=shape, order=1, mode="constant", cval=0.0
            )
    return np.clip(out, 0.0, 1.0)


def _ras_to_lps(ras_xyz: NDArray[np.float64]) -> NDArray[np.float64]:
    """RAS (x, y, z) -> LPS in (z, y, x) order (same unit)."""
    return np.array([ras_xyz[2], -ras_xyz[1], -ras_xyz[0]], dtype=np.float64)


def _sample_fractions(
    tpl: _Template, pos_iso_m: NDArray[np.float64], centre_lps_m: NDArray[np.float64], index_of: dict[str, int]
) -> NDArray[np.float64]:
    """Tissue fractions at isocentred LPS points ``(3, ...)`` [m] -> ``(n_tissue, ...)``."""
    lps_mm = (pos_iso_m + centre_lps_m.reshape(3, *([1] * (pos_iso_m.ndim - 1)))) * 1e3
    ras = np.stack([-lps_mm[2], -lps_mm[1], lps_mm[0]])
    m = tpl.ras_to_index
    ijk = np.tensordot(m[:3, :3], ras, axes=(1, 0)) + m[:3, 3].reshape(3, *([1] * (ras.ndim - 1)))
    gm, wm, brain = sample_linear((tpl.gm, tpl.wm, tpl.brain), ijk, mode="constant") / np.float32(255)
    dist = sample_linear(tpl.dist_mm, ijk / _COARSE + _PAD, mode="nearest")
    return _fractions_from_maps(gm, wm, brain, dist, index_of)


def _fractions_from_maps(
    gm: NDArray[np.floating],
    wm: NDArray[np.floating],
    brain: NDArray[np.floating],
    dist: NDArray[np.floating],
    index_of: dict[str, int],
) -> NDArray[np.float64]:
    """Tissue fractions from GM/WM probabilities, the brain mask and the distance to the brain surface [mm]."""
    gw = gm + wm
    over = gw > 1.0
    if np.any(over):
        scale = np.where(over, 1.0 / np.maximum(gw, 1e-12), 1.0).astype(gm.dtype)
        gm, wm = gm * scale, wm * scale
    brain = np.clip(np.maximum(brain, gm + wm), 0.0, 1.0)
    out = np.zeros((len(index_of), *gm.shape), dtype=np.result_type(gm.dtype, np.float32))
    out[index_of["gm"]] = gm
    out[index_of["wm"]] = wm
    out[index_of["csf"]] = np.clip(brain - gm - wm, 0.0, 1.0)
    outside = 1.0 - brain
    for tissue, inner, outer in _SHELLS:
        w = (_ramp(dist - inner) if math.isfinite(inner) else np.float32(1.0)) - _ramp(dist - outer)
        out[index_of[tissue]] += outside * w
    return out


def _off_resonance_hz(
    affine: NDArray[np.float64], shape: tuple[int, int, int], centre_lps_m: NDArray[np.float64], b0_t: float
) -> NDArray[np.float32]:
    """B0 inhomogeneity model [Hz] on the grid: second-order shim residual + air-cavity offsets."""
    idx = np.stack(np.meshgrid(*(np.arange(s, dtype=np.float64) for s in shape), indexing="ij"), axis=-1)
    pos = idx @ affine[:3, :3].T + affine[:3, 3]  # isocentred LPS zyx [m]
    z, y, x = pos[..., 0], pos[..., 1], pos[..., 2]
    ppm = 0.05 * (z**2 - 0.5 * (x**2 + y**2)) / 0.08**2
    for ras_mm, width_mm, peak in _AIR_CAVITIES:
        c = _ras_to_lps(np.asarray(ras_mm)) * 1e-3 - centre_lps_m
        r2 = np.sum((pos - c) ** 2, axis=-1)
        ppm = ppm + peak * np.exp(-r2 / (2.0 * (width_mm * 1e-3) ** 2))
    return (ppm * 1e-6 * GAMMA_BAR_HZ_PER_T * b0_t).astype(np.float32)
