"""Tests of the Phantom container, the brain phantom and the Shepp-Logan phantom with its analytic k-space."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.data.geometry import centred_affine
from hifield.errors import ConfigError
from hifield.phantom import Phantom, brain_phantom, shepp_logan_kspace, shepp_logan_phantom, tissue_properties


def _two_tissue_phantom() -> Phantom:
    fr = np.zeros((2, 2, 8, 8), np.float32)
    fr[0, :, 2:6, 2:6] = 0.75
    fr[1, :, 2:6, 2:6] = 0.25
    fr[1, :, 0, 0] = 0.3
    off = np.full((2, 8, 8), 30.0, np.float32)
    return Phantom(
        fractions=fr,
        tissues=(tissue_properties("wm", 3.0), tissue_properties("csf", 3.0)),
        off_resonance_hz=off,
        affine=centred_affine((2, 8, 8), (0.004, 0.002, 0.002)),
        b0_t=3.0,
        name="test",
    )


def test_phantom_maps_labels_and_validation() -> None:
    p = _two_tissue_phantom()
    assert p.shape == (2, 8, 8)
    wm, csf = p.tissues
    assert p.pd[0, 3, 3] == pytest.approx(0.75 * wm.pd + 0.25 * csf.pd)
    w = np.array([0.75 * wm.pd, 0.25 * csf.pd])
    assert p.t2_s[0, 3, 3] == pytest.approx(w.sum() / (w[0] / wm.t2_s + w[1] / csf.t2_s), rel=1e-6)
    assert p.t1_s[0, 7, 7] == 0.0
    assert p.labels[0, 3, 3] == 0 and p.labels[0, 7, 7] == -1 and p.labels[0, 0, 0] == -1
    assert p.pd.dtype == np.float32 and p.t1_s.dtype == np.float32
    with pytest.raises(ConfigError, match="fraction maps"):
        Phantom(
            fractions=p.fractions[:1], tissues=p.tissues, off_resonance_hz=p.off_resonance_hz, affine=p.affine, b0_t=3.0
        )
    with pytest.raises(ConfigError, match="off-resonance"):
        p.replace(off_resonance_hz=np.zeros((1, 8, 8), np.float32))
    with pytest.raises(ConfigError, match="sum to <= 1"):
        p.replace(fractions=p.fractions * 2)
    with pytest.raises(ConfigError, match=r"outside 0\.1-11\.7"):
        p.at_field(20.0)


def test_at_field_updates_tissues_and_scales_off_resonance() -> None:
    p = _two_tissue_phantom().at_field(7.0)
    assert p.b0_t == 7.0
    assert p.tissues[0].t1_s == pytest.approx(1.220)
    assert p.off_resonance_hz[0, 0, 0] == pytest.approx(70.0)
    p5 = p.at_field(5.0)
    assert p5.interpolated and p5.tissues[0].interpolated


def test_slice_keeps_positions() -> None:
    p = _two_tissue_phantom()
    pos = p.positions_m()
    for axis in range(3):
        s = p.slice(1, axis=axis)
        assert s.shape[0] == 1
        idx = [slice(None)] * 3
        idx[axis] = slice(1, 2)
        expected = np.moveaxis(pos[tuple(idx)], axis, 0)
        np.testing.assert_allclose(s.positions_m(), expected, atol=1e-12)
        np.testing.assert_array_equal(s.fractions, np.moveaxis(p.fractions[(slice(None), *idx)], axis + 1, 1))


def test_resample_preserves_total_signal_and_field_of_view() -> None:
    p = shepp_logan_phantom(matrix=128)
    q = p.resample((1, 64, 64))
    assert q.shape == (1, 64, 64)
    assert q.voxel_size_m[1] == pytest.approx(2 * p.voxel_size_m[1])
    # same object: integrated PD (sum * voxel area) agrees within 1 %
    area_p = p.voxel_size_m[1] * p.voxel_size_m[2]
    area_q = q.voxel_size_m[1] * q.voxel_size_m[2]
    assert q.pd.sum() * area_q == pytest.approx(p.pd.sum() * area_p, rel=0.01)

    # same position: the PD-weighted centroid does not move
    def centroid(x: Phantom) -> np.ndarray:
        w = x.pd
        return (x.positions_m() * w[..., None]).sum(axis=(0, 1, 2)) / w.sum()

    np.testing.assert_allclose(centroid(q), centroid(p), atol=0.05 * p.voxel_size_m[1])
    # upsampling back gives a close image
    r = q.resample((1, 128, 128))
    assert np.abs(r.pd - p.pd).mean() < 0.05


def test_brain_phantom_is_anatomical() -> None:
    p = brain_phantom(b0_t=3.0, matrix=256)
    assert p.shape == (1, 256, 256)
    assert p.tissue_names == ("gm", "wm", "csf", "fat", "muscle", "bone")
    fr = p.fractions
    assert fr.sum(axis=0).max() <= 1.0 + 1e-5 and fr.min() >= 0
    vox = p.voxel_size_m[1] * p.voxel_size_m[2]
    area = {t: fr[i].sum() * vox * 1e4 for i, t in enumerate(p.tissue_names)}  # cm²
    # an axial slice through the lateral ventricles (MNI brain ~ 14 x 17 cm + CSF shell): 150-250 cm²
    assert 150 < area["gm"] + area["wm"] + area["csf"] < 250
    assert area["wm"] > 25 and area["gm"] > 25
    assert 10 < area["csf"] < 50
    assert area["bone"] > 5 and area["fat"] > 5
    # ventricles: CSF near the centre of the head
    lab = p.labels[0]
    centre = lab[118:138, 118:138]
    assert np.any(centre == p.tissue_index("csf"))
    # head surrounded by empty space, centred in the FOV
    assert np.all(lab[:5] == -1) and np.all(lab[-5:] == -1)
    ys, xs = np.nonzero(lab >= 0)
    assert abs(ys.mean() - 128) < 12 and abs(xs.mean() - 128) < 6
    # mostly left-right symmetric (symmetric template)
    pd = p.pd[0]
    assert np.abs(pd - pd[:, ::-1][:, np.r_[255, 0:255]]).mean() < 0.05


def test_brain_planes_volumes_and_field() -> None:
    for plane in ("coronal", "sagittal"):
        p = brain_phantom(matrix=64, plane=plane)
        assert p.shape == (1, 64, 64) and p.fractions[:3].sum() > 100
    p3, p7 = brain_phantom(matrix=64, b0_t=3.0), brain_phantom(matrix=64, b0_t=7.0)
    np.testing.assert_allclose(p7.off_resonance_hz, p3.off_resonance_hz * 7 / 3, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(p3.at_field(7.0).off_resonance_hz, p7.off_resonance_hz, rtol=1e-5, atol=1e-3)
    with pytest.raises(ConfigError):
        brain_phantom(plane="oblique")
    with pytest.raises(ConfigError, match="GiB"):
        brain_phantom(matrix=2048, n_slices=2048)


def test_shepp_logan_fractions_match_ellipse_areas() -> None:
    p = shepp_logan_phantom(matrix=256, oversampling=4)
    vox = p.voxel_size_m[1] * p.voxel_size_m[2]
    # total object area = outer ellipse pi * 0.72 * 0.95 * S^2
    s = 0.115
    total = p.fractions.sum() * vox
    assert total == pytest.approx(np.pi * 0.72 * 0.95 * s**2, rel=2e-3)
    # integral of PD equals the analytic k-space at k = 0
    k0 = shepp_logan_kspace(np.zeros((1, 3)))[0]
    assert p.pd.sum() * vox == pytest.approx(k0.real, rel=2e-3)


def test_shepp_logan_analytic_kspace_reconstructs_the_object_without_inverse_crime() -> None:
    n, fov = 128, 0.24
    p = shepp_logan_phantom(matrix=n, fov_m=fov, oversampling=4)
    k = (np.arange(n) - n // 2) / fov
    ky, kx = np.meshgrid(k, k, indexing="ij")
    kpts = np.stack([np.zeros_like(ky), ky, kx], axis=-1)
    ksp = shepp_logan_kspace(kpts)
    # the grid's index n//2 sits at 0 m, matching the k-space centre convention
    img = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(ksp))) * (n / fov) ** 2
    assert np.abs(img.imag).max() < 1e-2 * np.abs(img).max()  # only from the unpaired Nyquist line
    err = np.linalg.norm(img.real - p.pd[0]) / np.linalg.norm(p.pd[0])
    assert err < 0.15  # Gibbs ringing at the edges only
    inner = np.abs(img.real - p.pd[0])[40:88, 40:88]
    assert np.median(inner) < 0.02


def test_shepp_logan_3d_kspace_dc_and_symmetry() -> None:
    p = shepp_logan_phantom(matrix=48, n_slices=48, fov_m=0.24)
    vol = np.prod(p.voxel_size_m)
    k0 = shepp_logan_kspace(np.zeros((1, 3)), ndim=3)[0]
    assert p.pd.sum() * vol == pytest.approx(k0.real, rel=0.02)
    rng = np.random.default_rng(0)
    kk = rng.uniform(-200, 200, (10, 3))
    a = shepp_logan_kspace(kk, ndim=3)
    b = shepp_logan_kspace(-kk, ndim=3)
    np.testing.assert_allclose(a, np.conj(b), rtol=1e-10, atol=1e-14)  # real object: Hermitian k-space


def test_b1_scale_travels_with_slice_and_resample_and_is_dropped_at_another_field() -> None:
    p = _two_tissue_phantom()
    b1 = np.linspace(0.5, 1.5, 128, dtype=np.float32).reshape(2, 8, 8)
    q = p.replace(b1_scale=b1)
    assert q.slice(1, axis=2).b1_scale.shape == (1, 2, 8)
    np.testing.assert_allclose(q.slice(1, axis=2).b1_scale[0], b1[:, :, 1])
    assert q.resample((2, 4, 4)).b1_scale.shape == (2, 4, 4)
    assert q.at_field(7.0).b1_scale is None
    with pytest.raises(ConfigError, match="B1"):
        p.replace(b1_scale=np.ones((1, 8, 8), np.float32))


def test_show_labels_interpolated_values() -> None:
    p = shepp_logan_phantom(matrix=32, b0_t=5.0)
    fig = p.show()
    assert "interpolated" in fig._suptitle.get_text()
    assert len(fig.axes) >= 6
    assert "interpolated" not in shepp_logan_phantom(matrix=32, b0_t=3.0).show()._suptitle.get_text()


def test_susceptibility_map_and_field_of_water_spheres_in_air() -> None:
    from hifield.hardware.fields import field_from_susceptibility
    from hifield.phantom import nist_phantom
    from hifield.phantom.system import NIST_SPHERE_RADIUS_M

    p = nist_phantom(matrix=64, fov_m=0.16, n_slices=24, oversampling=2)
    chi = p.susceptibility_ppm()
    assert chi.min() == pytest.approx(-9.05) and chi.max() == pytest.approx(0.36)
    dchi = -9.05 - 0.36
    field = field_from_susceptibility(chi - 0.36, p.voxel_size_m)  # relative to air
    # 15 mm above the centre of sphere 1 (along B0): dipole field 2/3 dchi (a/r)^3, other spheres add a little
    w = p.fractions[0]
    pos = p.positions_m()
    centroid = (pos * w[..., None]).sum(axis=(0, 1, 2)) / w.sum()
    idx = np.round(np.linalg.solve(p.affine, np.append(centroid, 1.0))[:3]).astype(int)
    step = 6  # voxels of 2.5 mm
    r = step * p.voxel_size_m[0]
    expected = 2.0 / 3.0 * dchi * (NIST_SPHERE_RADIUS_M / r) ** 3
    assert field[idx[0] + step, idx[1], idx[2]] == pytest.approx(expected, rel=0.25)
    assert field[idx[0] + step, idx[1], idx[2]] < 0  # diamagnetic sphere in air: field lowered along B0
    assert tissue_properties("fat", 3.0).susceptibility_ppm > tissue_properties("water", 3.0).susceptibility_ppm


@pytest.mark.parametrize("plane", ["axial", pytest.param("sagittal", marks=pytest.mark.slow)])
def test_brain_3d_volume_agrees_with_the_2d_slice_path(plane: str) -> None:
    v = brain_phantom(matrix=48, n_slices=8, plane=plane, fov_m=0.24)
    assert v.shape == (8, 48, 48)
    k = 5
    unit = v.affine[:3, 0] / np.linalg.norm(v.affine[:3, 0])
    pos = float(unit @ (v.affine @ [k, 0, 0, 1])[:3])
    p2 = brain_phantom(matrix=48, plane=plane, slice_position_m=pos, slice_thickness_m=v.voxel_size_m[0])
    np.testing.assert_allclose(p2.positions_m()[0], v.positions_m()[k], atol=1e-9)
    diff = np.abs(p2.fractions[:, 0] - v.fractions[:, k])
    assert diff.mean() < 0.01
    assert v.fractions[:, k].sum() == pytest.approx(p2.fractions[:, 0].sum(), rel=0.01)


def test_brain_template_is_cached_per_machine_and_read_back_equal(tmp_path, monkeypatch) -> None:
    """The derived MNI152 template (0.6 s to build) is saved once and read back bit for bit; a damaged file is
    rebuilt; an empty HIFIELD_CACHE_DIR turns the cache off."""
    import dataclasses

    from hifield.phantom import brain

    def fresh():
        brain._template.cache_clear()
        return brain._template()

    monkeypatch.setenv("HIFIELD_CACHE_DIR", str(tmp_path / "cache"))
    try:
        built = fresh()
        files = list((tmp_path / "cache").glob("brain_template_*.npz"))
        assert len(files) == 1
        read_back = fresh()
        for field in dataclasses.fields(built):
            a, b = getattr(built, field.name), getattr(read_back, field.name)
            assert a.dtype == b.dtype and np.array_equal(a, b), field.name
        files[0].write_bytes(files[0].read_bytes()[:1000])  # a cut file
        rebuilt = fresh()
        assert np.array_equal(rebuilt.dist_mm, built.dist_mm)
        assert files[0].stat().st_size > 1_000_000  # rewritten whole
        monkeypatch.setenv("HIFIELD_CACHE_DIR", "")
        off = fresh()
        assert np.array_equal(off.gm, built.gm)
        assert brain.cache_dir() is None
    finally:
        brain._template.cache_clear()
