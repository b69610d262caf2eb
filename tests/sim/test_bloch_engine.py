"""The bloch engine end to end: phantom + pypulseq sequence + scanner -> RawData; shifts, seeds, bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pypulseq")

from hifield.data.geometry import centred_affine
from hifield.errors import SequenceError
from hifield.hardware.scanner import Scanner
from hifield.phantom import Phantom, tissue_properties
from hifield.sequence import GreProtocol
from hifield.sim.engines.bloch import BlochOptions, simulate_bloch
from hifield.sim.engines.bloch_program import compile_sequence
from hifield.units import GAMMA_BAR_HZ_PER_T

# these tests use few isochromats on purpose (speed); the count a sequence needs is tested in test_bloch_isochromats
pytestmark = pytest.mark.filterwarnings("ignore::hifield.sim.engines.bloch_isochromat_count.IsochromatWarning")

N, OVER, FOV = 16, 2, 0.24
OPTIONS = BlochOptions()  # the isochromat count chosen from the sequence


def _square_phantom(tissue: str, *, off_resonance_hz: float = 0.0, b0: float = 3.0) -> Phantom:
    n = N * OVER
    fr = np.zeros((1, 1, n, n), np.float32)
    fr[0, 0, 12:20, 12:20] = 1.0
    props = tissue_properties(tissue, b0, fat_peaks="single") if tissue == "fat" else tissue_properties(tissue, b0)
    return Phantom(
        fractions=fr,
        tissues=(props,),
        off_resonance_hz=np.full((1, n, n), off_resonance_hz, np.float32),
        affine=centred_affine((1, n, n), (0.005, FOV / n, FOV / n)),
        b0_t=b0,
        name=tissue,
    )


@pytest.fixture(scope="module")
def setup() -> tuple[Scanner, object]:
    scanner = Scanner.preset("3T", n_coils=2)
    sequence = GreProtocol(matrix=N, fov_m=FOV, tr_s=0.05, flip_angle_rad=0.3).build(scanner)
    return scanner, sequence


def _image(raw) -> np.ndarray:  # type: ignore[no-untyped-def]
    k = raw.kspace.astype(np.complex128)
    img = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return np.sqrt((np.abs(img) ** 2).sum(axis=0))[0]


def _shift_pixels(moved, reference, axis: int = -1) -> float:  # type: ignore[no-untyped-def]
    """Shift of ``moved`` relative to ``reference`` in pixels along ``axis`` from the k-space phase ramp (Fourier
    shift theorem: an image shift by s pixels multiplies k-space by exp(-i 2 pi k s / N))."""
    r = np.conj(reference.kspace.astype(np.complex128)) * moved.kspace.astype(np.complex128)
    r = np.moveaxis(r, axis, -1)
    step = np.sum(np.conj(r[..., :-1]) * r[..., 1:])
    return float(-np.angle(step) * r.shape[-1] / (2 * np.pi))


def test_layout_header_and_signal_scale(setup) -> None:  # type: ignore[no-untyped-def]
    scanner, sequence = setup
    raw = simulate_bloch(_square_phantom("wm"), sequence, scanner, noise=False, rng=np.random.default_rng(0))
    assert raw.kspace.shape == (2, 1, N, N) and raw.kspace.dtype == np.complex64
    assert raw.header.engine == "bloch" and raw.header.matrix == (1, N, N)
    assert raw.mask is None and raw.noise is None
    assert raw.header.pixel_bandwidth_hz == pytest.approx(sequence.pixel_bandwidth_hz, rel=1e-6)
    # signal units: image = transverse magnetisation x voxel volume in mm^3 (noise module convention); the
    # square's centre against the Ernst steady state (the sequence has no dummy scans: the centre line is the
    # 9th TR, still above steady state, so compare with the first-TR bound and the Ernst value as a lower bound)
    wm = tissue_properties("wm", 3.0)
    voxel_mm3 = (FOV / N) ** 2 * 0.005 * 1e9
    img = _image(raw) / voxel_mm3  # rss over coils whose rss sensitivity is ~1 near the centre
    centre = float(img[7:9, 7:9].mean())
    e1 = np.exp(-sequence.tr_s / wm.t1_s)
    ernst = np.sin(0.3) * (1 - e1) / (1 - e1 * np.cos(0.3)) * np.exp(-sequence.te_s / wm.t2star_s) * wm.pd
    first = np.sin(0.3) * np.exp(-sequence.te_s / wm.t2star_s) * wm.pd
    assert 0.9 * ernst < centre < 1.1 * first


def test_fat_shift_in_pixels_is_offset_over_bandwidth_per_pixel(setup) -> None:  # type: ignore[no-untyped-def]
    scanner, sequence = setup
    rng = np.random.default_rng(0)
    water = simulate_bloch(_square_phantom("wm"), sequence, scanner, noise=False, rng=rng, options=OPTIONS)
    fat = simulate_bloch(_square_phantom("fat"), sequence, scanner, noise=False, rng=rng, options=OPTIONS)
    df_fat = GAMMA_BAR_HZ_PER_T * 3.0 * -3.4e-6
    expected = df_fat / sequence.pixel_bandwidth_hz  # about -1.7 pixels: fat moves towards -x
    assert _shift_pixels(fat, water) == pytest.approx(expected, abs=0.02)
    # a B0 offset of +2 pixels' bandwidth moves the object by +2 pixels along the readout ...
    off = 2.0 * sequence.pixel_bandwidth_hz
    phantom = _square_phantom("wm", off_resonance_hz=off)
    shifted = simulate_bloch(phantom, sequence, scanner, noise=False, rng=rng, options=OPTIONS)
    assert _shift_pixels(shifted, water) == pytest.approx(2.0, abs=0.02)
    # ... and not along the phase-encoding axis
    assert _shift_pixels(shifted, water, axis=-2) == pytest.approx(0.0, abs=0.02)

    # the magnitude image moves as well (centroid of the object above half its maximum)
    def centroid(raw) -> float:  # type: ignore[no-untyped-def]
        profile = _image(raw).sum(0)
        profile = np.where(profile > 0.5 * profile.max(), profile, 0.0)
        return float((profile * np.arange(N)).sum() / profile.sum())

    assert centroid(shifted) - centroid(water) == pytest.approx(2.0, abs=0.1)


def test_same_seed_is_bit_identical(setup) -> None:  # type: ignore[no-untyped-def]
    scanner, sequence = setup
    phantom = _square_phantom("wm", off_resonance_hz=5.0)
    a = simulate_bloch(phantom, sequence, scanner, noise=True, rng=np.random.default_rng(7), options=OPTIONS)
    b = simulate_bloch(phantom, sequence, scanner, noise=True, rng=np.random.default_rng(7), options=OPTIONS)
    c = simulate_bloch(phantom, sequence, scanner, noise=True, rng=np.random.default_rng(8), options=OPTIONS)
    assert a.kspace.tobytes() == b.kspace.tobytes()
    assert a.noise is not None and b.noise is not None and a.noise.tobytes() == b.noise.tobytes()
    assert a.kspace.tobytes() != c.kspace.tobytes()


def test_sequence_without_adc_or_blocks_is_refused() -> None:
    import pypulseq as pp

    empty = pp.Sequence()
    with pytest.raises(SequenceError, match="no blocks"):
        compile_sequence(empty)
    seq = pp.Sequence()
    seq.add_block(pp.make_block_pulse(np.pi / 2, duration=1e-3))
    seq.add_block(pp.make_delay(1e-2))
    with pytest.raises(SequenceError, match="no ADC"):
        compile_sequence(seq)


def test_through_slice_spread_integrates_the_slice_profile() -> None:
    scanner = Scanner.preset("3T", n_coils=1)
    sequence = GreProtocol(matrix=N, fov_m=FOV, tr_s=2.0, flip_angle_rad=0.17).build(scanner)
    phantom = _square_phantom("wm")
    rng = np.random.default_rng(0)

    def peak(options: BlochOptions) -> float:
        raw = simulate_bloch(phantom, sequence, scanner, noise=False, rng=rng, options=options)
        return float(np.abs(raw.kspace).max())

    in_plane = peak(BlochOptions(n_isochromats=64))
    three = peak(BlochOptions(n_isochromats=256, through_slice=3.0))
    six = peak(BlochOptions(n_isochromats=512, through_slice=6.0))
    # a TBW-4 Hanning sinc: the profile integral is close to FWHM x peak, and spins far outside add nothing
    assert 0.9 < three / in_plane < 1.05
    assert six == pytest.approx(three, rel=0.02)


def test_seq_file_round_trip_and_label_free_placement(setup, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    import pypulseq as pp

    from hifield.sim.engines import bloch as bloch_module

    scanner, sequence = setup
    phantom = _square_phantom("wm", off_resonance_hz=3.0)
    reference = simulate_bloch(phantom, sequence, scanner, noise=False, rng=np.random.default_rng(0), options=OPTIONS)
    path = tmp_path / "gre.seq"
    sequence.seq.write(str(path))
    read = pp.Sequence()
    read.read(str(path))
    from_file = dataclasses.replace(sequence, seq=read)
    got = simulate_bloch(phantom, from_file, scanner, noise=False, rng=np.random.default_rng(0), options=OPTIONS)
    scale = np.abs(reference.kspace).max()
    assert np.abs(got.kspace - reference.kspace).max() < 2e-3 * scale
    # without LIN labels the lines are placed from the k-space of each readout's centre sample
    monkeypatch.setattr(type(read), "evaluate_labels", lambda self, **kw: {})
    program = bloch_module.compile_sequence(read)
    k1, k2, avg, rev = bloch_module._adc_lines(read, program, N, FOV, 1, 0.005)
    np.testing.assert_array_equal(k1, sequence.phase_encode_lines)
    assert not k2.any() and not avg.any() and not rev.any()


def _epi(n: int, fov: float):  # type: ignore[no-untyped-def]
    """A single-shot blipped Cartesian EPI (flat-top sampling, REV label on the negative readouts)."""
    import types

    import pypulseq as pp

    system = pp.Opts(max_grad=40, grad_unit="mT/m", max_slew=150, slew_unit="T/m/s", rf_dead_time=0,
                     rf_ringdown_time=0, adc_dead_time=0)  # fmt: skip
    seq = pp.Sequence(system)
    dwell = 10e-6
    amp = 1.0 / (fov * dwell)
    gx = pp.make_trapezoid("x", amplitude=amp, flat_time=n * dwell, system=system)
    adc = pp.make_adc(n, dwell=dwell, delay=gx.rise_time, system=system)
    pre_x = -(amp * gx.rise_time / 2 + amp * (n // 2 + 0.5) * dwell)
    blip = pp.make_trapezoid("y", area=1.0 / fov, system=system)
    seq.add_block(pp.make_block_pulse(np.pi / 2, duration=100e-6, system=system))
    seq.add_block(
        pp.make_trapezoid("x", area=pre_x, duration=4e-4, system=system),
        pp.make_trapezoid("y", area=-(n // 2) / fov, duration=4e-4, system=system),
    )
    for line in range(n):
        sign = 1.0 if line % 2 == 0 else -1.0
        g = pp.scale_grad(gx, sign)
        lin = pp.make_label(label="LIN", type="SET", value=line)
        rev = pp.make_label(label="REV", type="SET", value=int(sign < 0))
        seq.add_block(g, adc, lin, rev)
        if line < n - 1:
            seq.add_block(blip)
    esp = pp.calc_duration(gx) + pp.calc_duration(blip)
    protocol = types.SimpleNamespace(matrix=n, fov_m=fov, slice_thickness_m=0.005, name="epi_test")
    built = types.SimpleNamespace(
        seq=seq, protocol=protocol, te_s=0.0, tr_s=float(seq.duration()[0]), flip_angle_rad=np.pi / 2,
        readout_dwell_s=dwell, duration_s=float(seq.duration()[0]), scanning_sequence="EP",
    )  # fmt: skip
    return built, esp


def test_epi_phase_encode_shift_is_offset_times_esp_times_n() -> None:
    scanner = Scanner.preset("3T", n_coils=1)
    epi, esp = _epi(N, FOV)
    bandwidth_pe = 1.0 / (esp * N)  # Hz per pixel along the phase encoding
    rng = np.random.default_rng(0)
    on = simulate_bloch(_square_phantom("wm"), epi, scanner, noise=False, rng=rng, options=OPTIONS)  # type: ignore[arg-type]
    off_phantom = _square_phantom("wm", off_resonance_hz=1.5 * bandwidth_pe)
    off = simulate_bloch(off_phantom, epi, scanner, noise=False, rng=rng, options=OPTIONS)  # type: ignore[arg-type]
    # k1 increases with time, so the object moves by +df * ESP * N pixels along y (and ~0 along x)
    assert _shift_pixels(off, on, axis=-2) == pytest.approx(1.5, abs=0.05)
    assert abs(_shift_pixels(off, on, axis=-1)) < 0.1
    # the REV lines are placed reversed: the on-resonance EPI image matches the square (no Nyquist ghost)
    image = _image(on)
    inside = image[6:10, 6:10].mean()
    ghost = image[0:3, :].mean()  # a N/2 ghost would sit half a FOV away along y
    assert ghost < 0.05 * inside


def test_voxel_shapes_encode_like_band_limited_samples(setup) -> None:  # type: ignore[no-untyped-def]
    from hifield.sim.engines.bloch import isochromat_offsets, voxel_transfer

    # weights sum to 1, the sinc voxel reaches beyond its own voxel with negative lobes
    _, _, w_box = isochromat_offsets(64, (0.0, 1e-3, 1e-3), 0.0, voxel_shape="box")
    pos, _, w_sinc = isochromat_offsets(64, (0.0, 1e-3, 1e-3), 0.0, voxel_shape="sinc")
    assert w_box.sum() == pytest.approx(1.0) and w_sinc.sum() == pytest.approx(1.0)
    assert w_sinc.min() < 0 and np.abs(pos[:, 2]).max() > 1e-3
    # the box response is close to sinc(k dx); dividing it out leaves the same image for both shapes
    k = np.linspace(-400, 400, 9)
    t = voxel_transfer((np.zeros(1), np.zeros(1), k), *isochromat_offsets(256, (0.0, 0.0, 1e-3), 0.0)[::2])
    np.testing.assert_allclose(t[0, 0].real, np.sinc(k * 1e-3), atol=1e-3)
    scanner, sequence = setup
    phantom = _square_phantom("wm")
    rng = np.random.default_rng(0)
    images = [
        _image(simulate_bloch(phantom, sequence, scanner, noise=False, rng=rng, options=BlochOptions(n, voxel_shape=s)))
        for n, s in ((None, "band"), (1024, "box"), (1024, "sinc"))
    ]
    for image in images[1:]:  # with enough isochromats, every voxel model encodes the same object
        assert np.linalg.norm(image - images[0]) < 0.01 * np.linalg.norm(images[0])
