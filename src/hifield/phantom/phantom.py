"""The ``Phantom``: partial-volume tissue fractions and an off-resonance map on a grid with an affine in metres."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.errors import check_memory as _check_memory
from hifield.phantom.tissues import TissueProperties, check_field, tissue_properties

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def check_memory(n_bytes: float, *, what: str) -> None:
    """Refuse phantom allocations larger than half the machine's memory (see :func:`hifield.errors.check_memory`)."""
    _check_memory(n_bytes, what=what, hint="lower the matrix, oversampling or number of slices")


@dataclass(frozen=True, eq=False)
class Phantom:
    """A digital object: tissue fractions per voxel, tissue properties at ``b0_t``, and an off-resonance map.

    The grid is ``(z, y, x)``; a 2D phantom has ``z = 1``. The affine maps an index ``(z, y, x, 1)`` to the LPS
    position ``(z, y, x, 1)`` [m] of the voxel centre (see :mod:`hifield.data.geometry`).

    Examples
    --------
    >>> from hifield.data.geometry import centred_affine
    >>> fr = np.zeros((1, 1, 4, 4), np.float32); fr[0, 0, 1:3, 1:3] = 1
    >>> p = Phantom(fractions=fr, tissues=(tissue_properties("wm", 3.0),),
    ...             off_resonance_hz=np.zeros((1, 4, 4), np.float32),
    ...             affine=centred_affine((1, 4, 4), (0.005, 0.001, 0.001)), b0_t=3.0, name="square")
    >>> p.shape, float(p.t1_s[0, 1, 1]), int(p.labels[0, 0, 0])
    ((1, 4, 4), 1.0839999914169312, -1)
    """

    fractions: NDArray[np.float32]
    """Partial-volume tissue fractions, shape ``(n_tissue, z, y, x)``, each voxel summing to <= 1."""
    tissues: tuple[TissueProperties, ...]
    """Properties of each tissue at :attr:`b0_t` (length ``n_tissue``)."""
    off_resonance_hz: NDArray[np.float32]
    """B0 inhomogeneity as a frequency offset [Hz], shape ``(z, y, x)`` (scales with B0)."""
    affine: NDArray[np.float64]
    """4 x 4 affine: index ``(z, y, x, 1)`` -> LPS ``(z, y, x, 1)`` [m]."""
    b0_t: float
    """Main field the tissue properties and off-resonance belong to [T]."""
    name: str = "phantom"
    """Short description."""
    b1_scale: NDArray[np.float32] | None = None
    """Optional relative B1+ magnitude map ``(z, y, x)`` (1 = nominal flip angle), e.g. from
    :func:`hifield.hardware.fields.b1_plus_map`; field dependent, so :meth:`at_field` drops it."""

    def __post_init__(self) -> None:
        fr = np.asarray(self.fractions, dtype=np.float32)
        if fr.ndim != 4:
            raise ConfigError(f"phantom fractions must have shape (n_tissue, z, y, x); got {fr.shape}")
        if fr.shape[0] != len(self.tissues):
            raise ConfigError(f"phantom has {fr.shape[0]} fraction maps but {len(self.tissues)} tissues; match them")
        off = np.asarray(self.off_resonance_hz, dtype=np.float32)
        if off.shape != fr.shape[1:]:
            raise ConfigError(f"off-resonance map shape {off.shape} must equal the grid {fr.shape[1:]}")
        aff = np.asarray(self.affine, dtype=np.float64)
        if aff.shape != (4, 4) or not np.all(np.isfinite(aff)):
            raise ConfigError(f"phantom affine must be a finite 4 x 4 matrix; got shape {aff.shape}")
        if abs(np.linalg.det(aff[:3, :3])) == 0:
            raise ConfigError("phantom affine is singular; give non-zero voxel sizes")
        if not np.all(np.isfinite(fr)) or fr.min(initial=0.0) < -1e-6 or fr.sum(axis=0).max(initial=0.0) > 1 + 1e-3:
            raise ConfigError("phantom fractions must be finite, >= 0 and sum to <= 1 per voxel; renormalise them")
        check_field(self.b0_t)
        if self.b1_scale is not None:
            b1 = np.asarray(self.b1_scale, dtype=np.float32)
            if b1.shape != fr.shape[1:] or not np.all(np.isfinite(b1)) or b1.min(initial=0.0) < 0:
                raise ConfigError(f"B1+ scale map must be finite, >= 0 and of shape {fr.shape[1:]}; got {b1.shape}")
            object.__setattr__(self, "b1_scale", b1)
        object.__setattr__(self, "fractions", fr)
        object.__setattr__(self, "off_resonance_hz", off)
        object.__setattr__(self, "affine", aff)
        object.__setattr__(self, "tissues", tuple(self.tissues))
        object.__setattr__(self, "b0_t", float(self.b0_t))

    def __repr__(self) -> str:
        names = ", ".join(t.name for t in self.tissues)
        return f"Phantom(name={self.name!r}, shape={self.shape}, b0_t={self.b0_t}, tissues=({names}))"

    # ---- maps ---------------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid size ``(z, y, x)``."""
        s = self.fractions.shape
        return (int(s[1]), int(s[2]), int(s[3]))

    @property
    def n_tissues(self) -> int:
        """Number of tissues."""
        return len(self.tissues)

    @property
    def voxel_size_m(self) -> tuple[float, float, float]:
        """Voxel size ``(dz, dy, dx)`` [m]."""
        n = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(n[0]), float(n[1]), float(n[2]))

    @property
    def interpolated(self) -> bool:
        """True when any tissue's values were interpolated to this field rather than measured at it."""
        return any(t.interpolated for t in self.tissues)

    def _rate_weighted(self, times_s: list[float]) -> NDArray[np.float32]:
        """Effective time constant ``1 / (sum_t w_t / T_t)`` with signal weights ``w_t = f_t PD_t / sum f PD``.

        Averaging rates (not times) gives the initial slope of the mixed signal, so a few percent of CSF does not
        swamp a voxel's T2. Voxels without signal get 0.
        """
        w = np.asarray([t.pd for t in self.tissues], dtype=np.float64)[:, None, None, None] * self.fractions
        total = w.sum(axis=0)
        rates = np.asarray([1.0 / t for t in times_s], dtype=np.float64)
        rate = np.tensordot(rates, w, axes=(0, 0))
        ok = total > 1e-6
        out = np.where(ok, total / np.where(ok, rate, 1.0), 0.0)
        return out.astype(np.float32)

    @property
    def pd(self) -> NDArray[np.float32]:
        """Proton density ``sum_t f_t PD_t`` (empty space counts as 0), shape ``(z, y, x)``."""
        v = np.asarray([t.pd for t in self.tissues], dtype=np.float64)
        return np.tensordot(v, self.fractions.astype(np.float64), axes=(0, 0)).astype(np.float32)

    @property
    def t1_s(self) -> NDArray[np.float32]:
        """Effective T1 [s] of each voxel (signal-weighted mean rate, inverted; 0 without signal), for display."""
        return self._rate_weighted([t.t1_s for t in self.tissues])

    @property
    def t2_s(self) -> NDArray[np.float32]:
        """Effective T2 [s] (signal-weighted mean rate, inverted; 0 without signal), for display."""
        return self._rate_weighted([t.t2_s for t in self.tissues])

    @property
    def t2star_s(self) -> NDArray[np.float32]:
        """Effective T2* [s] (signal-weighted mean rate, inverted; 0 without signal), for display."""
        return self._rate_weighted([t.t2star_s for t in self.tissues])

    @property
    def labels(self) -> NDArray[np.int16]:
        """Index of the largest tissue fraction per voxel; -1 where less than half the voxel is filled."""
        lab = np.argmax(self.fractions, axis=0).astype(np.int16)
        lab[self.fractions.sum(axis=0) < 0.5] = -1
        return lab

    def susceptibility_ppm(self, *, fill_ppm: float = 0.36) -> NDArray[np.float32]:
        """Volume susceptibility map [ppm] ``sum_t f_t chi_t + (1 - sum_t f_t) fill`` (empty space: air by default).

        Feed it, relative to a reference (e.g. minus water's -9.05), to
        :func:`hifield.hardware.fields.field_from_susceptibility` for a B0 map from the anatomy.
        """
        chi = np.asarray([t.susceptibility_ppm for t in self.tissues], dtype=np.float64)
        fr = self.fractions.astype(np.float64)
        out = np.tensordot(chi, fr, axes=(0, 0)) + (1.0 - fr.sum(axis=0)) * fill_ppm
        return out.astype(np.float32)

    def tissue_index(self, name: str) -> int:
        """Index of the tissue called ``name`` (ConfigError when absent)."""
        for i, t in enumerate(self.tissues):
            if t.name == name:
                return i
        raise ConfigError(f"phantom {self.name!r} has no tissue {name!r}; it has {', '.join(self.tissue_names)}")

    @property
    def tissue_names(self) -> tuple[str, ...]:
        """Names of the tissues, in fraction order."""
        return tuple(t.name for t in self.tissues)

    def positions_m(self) -> NDArray[np.float64]:
        """LPS positions of the voxel centres, shape ``(z, y, x, 3)`` [m] in (z, y, x) order."""
        idx = np.stack(np.meshgrid(*(np.arange(n, dtype=np.float64) for n in self.shape), indexing="ij"), axis=-1)
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]

    # ---- transforms ---------------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Phantom:
        """Copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def at_field(self, b0_t: float) -> Phantom:
        """The same object at another main field.

        Tissue properties are looked up again with :func:`tissue_properties` (keeping each tissue's fat-peak
        model), and the off-resonance in Hz is scaled by ``b0_t / self.b0_t`` (susceptibility fields in ppm do not
        depend on B0).

        Raises
        ------
        ConfigError
            A field outside 0.1-11.7 T, or a tissue that is not defined at that field (NIST spheres).
        """
        b0 = check_field(b0_t)
        tissues = tuple(
            tissue_properties(t.name, b0, fat_peaks="single" if len(t.chemical_shift_ppm) == 1 else "six")
            for t in self.tissues
        )
        off = (self.off_resonance_hz * np.float32(b0 / self.b0_t)).astype(np.float32)
        return dataclasses.replace(self, tissues=tissues, off_resonance_hz=off, b0_t=b0, b1_scale=None)

    def slice(self, index: int, *, axis: int = 0) -> Phantom:
        """One slice of the grid as a 2D phantom of shape ``(1, a, b)``.

        Parameters
        ----------
        index
            Slice index along ``axis``.
        axis
            0 (z: axial for an axial grid), 1 (y) or 2 (x). The sliced axis becomes the first axis; the affine
            columns are permuted accordingly so positions stay correct.
        """
        if axis not in (0, 1, 2):
            raise ConfigError(f"slice axis must be 0, 1 or 2; got {axis}")
        n = self.shape[axis]
        if not -n <= index < n:
            raise ConfigError(f"slice index {index} is outside 0-{n - 1} along axis {axis}")
        index = index % n
        order = [axis] + [a for a in (0, 1, 2) if a != axis]
        fr = np.take(self.fractions, [index], axis=axis + 1).transpose(0, *(a + 1 for a in order))
        off = np.take(self.off_resonance_hz, [index], axis=axis).transpose(order)
        b1 = None if self.b1_scale is None else np.take(self.b1_scale, [index], axis=axis).transpose(order)
        aff = np.eye(4)
        aff[:3, :3] = self.affine[:3, order]
        shift = np.zeros(3)
        shift[axis] = index
        aff[:3, 3] = self.affine[:3, :3] @ shift + self.affine[:3, 3]
        return dataclasses.replace(
            self,
            fractions=np.ascontiguousarray(fr),
            off_resonance_hz=np.ascontiguousarray(off),
            b1_scale=None if b1 is None else np.ascontiguousarray(b1),
            affine=aff,
            name=f"{self.name} slice {index}",
        )

    def resample(self, shape_zyx: tuple[int, int, int], *, affine: NDArray[np.float64] | None = None) -> Phantom:
        """Resample onto another grid (trilinear, with box pre-filtering when the voxels grow).

        Parameters
        ----------
        shape_zyx
            New grid size ``(z, y, x)``.
        affine
            New affine; by default the same field of view (the grid's outer edges are kept, voxel size
            ``extent / n``).
        """
        from scipy import ndimage

        new_shape = tuple(int(s) for s in shape_zyx)
        if len(new_shape) != 3 or min(new_shape) < 1:
            raise ConfigError(f"resample shape must be three positive sizes (z, y, x); got {shape_zyx}")
        check_memory(4.0 * self.n_tissues * float(np.prod(new_shape)), what="resampled phantom")
        old = np.asarray(self.shape, dtype=np.float64)
        new = np.asarray(new_shape, dtype=np.float64)
        if affine is None:
            scale = old / new
            new_aff = self.affine.copy()
            new_aff[:3, :3] = self.affine[:3, :3] * scale[None, :]
            # keep the outer edge: centre of new voxel 0 sits at old index (scale - 1) / 2
            new_aff[:3, 3] = self.affine[:3, :3] @ ((scale - 1.0) / 2.0) + self.affine[:3, 3]
        else:
            new_aff = np.asarray(affine, dtype=np.float64)
            if new_aff.shape != (4, 4):
                raise ConfigError(f"affine must be 4 x 4; got {new_aff.shape}")
        # index mapping new -> old: old_idx = A_old^-1 A_new new_idx
        m = np.linalg.solve(self.affine, new_aff)
        # box pre-filter along old axes when downsampling (approximate area averaging)
        per_old_axis = np.abs(m[:3, :3]).sum(axis=1)  # old voxels spanned by one new voxel, per old axis
        size = np.where(per_old_axis > 1.5, np.round(per_old_axis), 1).astype(int)

        # an even box window averages [i - size/2, i + size/2 - 1]: it is centred half a voxel early
        offset = m[:3, 3] + np.where(size % 2 == 0, 0.5, 0.0)

        def _one(vol: NDArray[np.float32], mode: str = "constant") -> NDArray[np.float32]:
            v = ndimage.uniform_filter(vol, size=tuple(int(x) for x in size), mode=mode) if np.any(size > 1) else vol
            return ndimage.affine_transform(
                v, m[:3, :3], offset=offset, output_shape=new_shape, order=1, mode=mode, cval=0.0
            ).astype(np.float32)

        fr = np.stack([_one(f) for f in self.fractions])
        fr = np.clip(fr, 0.0, 1.0)
        total = fr.sum(axis=0)
        fr = np.where(total > 1.0, fr / np.maximum(total, 1e-12), fr).astype(np.float32)
        off = _one(self.off_resonance_hz, "nearest")
        b1 = None if self.b1_scale is None else _one(self.b1_scale, "nearest")
        return dataclasses.replace(self, fractions=fr, off_resonance_hz=off, affine=new_aff, b1_scale=b1)

    # ---- display ------------------------------------------------------------------------------------------
    def show(self, *, slice_index: int | None = None) -> Figure:
        """A figure of PD, T1, T2, T2*, off-resonance and tissue labels of one slice (matplotlib).

        Interpolated tissue values are labelled as such in the title.
        """
        from matplotlib.figure import Figure

        k = self.shape[0] // 2 if slice_index is None else int(slice_index)
        fig = Figure(figsize=(13, 8), layout="constrained")
        axes = fig.subplots(2, 3)
        panels: list[tuple[str, NDArray[np.float32], str, tuple[float, float] | None]] = [
            ("PD (relative)", self.pd[k], "gray", None),
            ("T1 [s]", self.t1_s[k], "viridis", None),
            ("T2 [ms]", self.t2_s[k] * 1e3, "magma", (0.0, 150.0)),
            ("T2* [ms]", self.t2star_s[k] * 1e3, "magma", (0.0, 120.0)),
            ("off-resonance [Hz]", self.off_resonance_hz[k], "RdBu_r", None),
            ("tissue label", self.labels[k].astype(np.float32), "tab20", None),
        ]
        dy, dx = self.voxel_size_m[1], self.voxel_size_m[2]
        extent = (0, self.shape[2] * dx * 1e3, self.shape[1] * dy * 1e3, 0)
        for ax, (title, img, cmap, lim) in zip(axes.ravel(), panels, strict=True):
            if title.startswith("off") and np.any(img):
                vmax = float(np.max(np.abs(img)))
                lim = (-vmax, vmax)
            im = ax.imshow(
                img,
                cmap=cmap,
                extent=extent,
                vmin=None if lim is None else lim[0],
                vmax=None if lim is None else lim[1],
                interpolation="nearest",
            )
            ax.set_title(title)
            ax.set_xlabel("mm")
            fig.colorbar(im, ax=ax, shrink=0.8)
        tag = " — interpolated values" if self.interpolated else ""
        names = ", ".join(f"{i}:{t.name}" for i, t in enumerate(self.tissues[:8]))
        if self.n_tissues > 8:
            names += f", ... {self.n_tissues - 1}:{self.tissues[-1].name}"
        fig.suptitle(f"{self.name} at {self.b0_t:g} T{tag}\nlabels {names}", fontsize=11)
        return fig
