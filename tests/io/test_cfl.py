"""BART .cfl/.hdr: round trip, layout against the bart binary, size mismatch."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from hifield.errors import FileFormatError
from hifield.io.cfl import read_cfl, write_cfl

from .conftest import require_tool


def test_round_trip_and_header(tmp_path, rng):
    x = (rng.standard_normal((4, 1, 6, 8)) + 1j * rng.standard_normal((4, 1, 6, 8))).astype(np.complex64)
    write_cfl(tmp_path / "k.cfl", x)
    assert (tmp_path / "k.hdr").read_text() == "# Dimensions\n8 6 1 4\n"
    np.testing.assert_array_equal(read_cfl(tmp_path / "k"), x)
    np.testing.assert_array_equal(read_cfl(tmp_path / "k", ndim=6), x.reshape(1, 1, 4, 1, 6, 8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.cfl", "k.hdr"]


def test_size_mismatch_and_bad_header(tmp_path, rng):
    write_cfl(tmp_path / "k", np.ones((3, 5)))
    (tmp_path / "k.cfl").write_bytes((tmp_path / "k.cfl").read_bytes()[:-8])
    with pytest.raises(FileFormatError, match="112 bytes") as err:
        read_cfl(tmp_path / "k")
    assert "\n" not in str(err.value)
    (tmp_path / "b.hdr").write_text("# Dims\n1 2\n")
    (tmp_path / "b.cfl").write_bytes(b"\0" * 16)
    with pytest.raises(FileFormatError, match="Dimensions"):
        read_cfl(tmp_path / "b")
    with pytest.raises(FileFormatError, match="missing"):
        read_cfl(tmp_path / "none")
    with pytest.raises(FileFormatError, match="non-singleton"):
        write_cfl(tmp_path / "c", np.ones((2, 3)))
        read_cfl(tmp_path / "c", ndim=1)


@pytest.mark.external
def test_bart_fft_matches_numpy(tmp_path, rng):
    bart = require_tool("bart")
    k = (rng.standard_normal((3, 1, 16, 12)) + 1j * rng.standard_normal((3, 1, 16, 12))).astype(np.complex64)
    write_cfl(tmp_path / "ksp", k)
    # BART dims 0 (x) and 1 (y): bitmask 3; -i inverse, -u unitary; BART's FFT is centred
    subprocess.run(
        [bart, "fft", "-i", "-u", "3", str(tmp_path / "ksp"), str(tmp_path / "img")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    img = read_cfl(tmp_path / "img", ndim=4)
    ours = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(img, ours, atol=1e-5 * np.abs(ours).max())


@pytest.mark.external
def test_read_bart_phantom(tmp_path):
    bart = require_tool("bart")
    subprocess.run(
        [bart, "phantom", "-x", "32", "-k", "-s", "4", str(tmp_path / "ph")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    k = read_cfl(tmp_path / "ph", ndim=4)  # BART (x, y, z, coil) -> hifield (coil, k2, k1, k0)
    assert k.shape == (4, 1, 32, 32)
    assert np.unravel_index(np.argmax(np.abs(k[0, 0])), (32, 32)) == (16, 16)  # DC at the centre
