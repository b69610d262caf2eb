"""Shared fixtures for the io tests: small raw data and images with full headers."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from hifield.data import Image, ImageHeader, RawData, RawHeader, centred_affine


def require_tool(name: str) -> str:
    """Path of an external tool, or skip the test."""
    exe = shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} not installed")
    return exe


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def make_header(matrix: tuple[int, int, int] = (1, 32, 24), **changes: object) -> RawHeader:
    fov = (0.004 * matrix[0], 0.2 * matrix[1] / 32, 0.18 * matrix[2] / 24)
    affine = centred_affine(matrix, tuple(f / n for f, n in zip(fov, matrix, strict=True)))
    affine[:3, 3] += [0.01, -0.02, 0.005]
    header = RawHeader(
        b0_t=7.0,
        fov_m=fov,
        matrix=matrix,
        te_s=0.0042,
        tr_s=0.0123,
        flip_angle_rad=math.radians(15.0),
        ti_s=0.9,
        slice_thickness_m=0.004,
        pixel_bandwidth_hz=260.0,
        readout_dwell_s=1e-5,
        acceleration=2.0,
        scan_time_s=1.5,
        scan_time_full_s=3.0,
        protocol_name="gre_t1_2d",
        sequence_name="hf_gre2d",
        scanning_sequence="IR\\GR",
        sequence_variant="SP\\MP",
        system_model="hifield-7T",
        affine=tuple(tuple(float(v) for v in row) for row in affine),
    )
    return header.replace(**changes)


def make_raw(rng: np.random.Generator, *, shape=(3, 1, 32, 24), other=(), noise=True, accel=True) -> RawData:
    """Random k-space with an equispaced R=2 mask plus an 8-line ACS block."""
    n_coil, n_k2, n_k1, n_k0 = shape
    kspace = (rng.standard_normal((*other, *shape)) + 1j * rng.standard_normal((*other, *shape))).astype(np.complex64)
    mask = calibration = None
    if accel:
        lines = np.zeros((n_k2, n_k1), bool)
        lines[:, ::2] = True
        acs = np.zeros((n_k2, n_k1), bool)
        acs[:, n_k1 // 2 - 4 : n_k1 // 2 + 4] = True
        lines |= acs
        mask = np.broadcast_to(lines[..., None], (n_k2, n_k1, n_k0)).copy()
        calibration = np.broadcast_to(acs[..., None], (n_k2, n_k1, n_k0)).copy()
        kspace = kspace * mask
    header = make_header((n_k2, n_k1, n_k0), acquisition_type="2D" if n_k2 == 1 else "3D")
    noise_arr = None
    if noise:
        noise_arr = (rng.standard_normal((n_coil, 100)) + 1j * rng.standard_normal((n_coil, 100))).astype(np.complex64)
    return RawData(kspace=kspace, header=header, mask=mask, calibration=calibration, noise=noise_arr)


def make_image(rng: np.random.Generator, *, shape=(3, 20, 16), complex_data=False) -> Image:
    """A smooth positive image (z, y, x) with an oblique-free geometry and full acquisition header."""
    nz, ny, nx = shape
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    mag = 100 + 50 * np.sin(x / 3.0) * np.cos(y / 4.0) + 10 * z + rng.uniform(0, 5, shape)
    data = mag.astype(np.float32)
    if complex_data:
        data = (mag * np.exp(1j * (x - nx / 2) / nx)).astype(np.complex64)
    header_raw = make_header(shape)
    header = ImageHeader(
        affine=header_raw.affine_array(),
        acquisition=header_raw,
        recon_method="sense",
        description="SENSE R=2 reconstruction of a simulated GRE",
    )
    return Image(data=data[None], header=header)
