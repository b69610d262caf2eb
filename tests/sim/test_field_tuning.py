"""Per-field defaults: FLAIR's TI nulls CSF and STIR's nulls fat at 1.5, 3, 5 and 7 T (fast engine, small matrix)."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.data.geometry import centred_affine
from hifield.hardware.scanner import Scanner
from hifield.phantom.phantom import Phantom
from hifield.phantom.tissues import tissue_properties
from hifield.recon import reconstruct
from hifield.sequence import get_protocol
from hifield.sequence.field_tuning import null_inversion_time, tune_for_field
from hifield.sim import simulate

N = 32


def _uniform(b0_t: float, name: str) -> Phantom:
    """One tissue filling the field of view (single-peak fat: the test is about T1, not chemical shift; one tissue
    per phantom so no edge ringing of a bright neighbour leaks into the nulled one)."""
    fractions = np.ones((1, 1, 2 * N, 2 * N), dtype=np.float32)
    tissues = (tissue_properties(name, b0_t, fat_peaks="single"),)
    return Phantom(
        fractions=fractions,
        tissues=tissues,
        off_resonance_hz=np.zeros((1, 2 * N, 2 * N), dtype=np.float32),
        affine=centred_affine((1, 2 * N, 2 * N), (0.005, 0.24 / (2 * N), 0.24 / (2 * N))),
        b0_t=b0_t,
    )


def _t1_at(b0_t: float):
    def t1_of(tissue: str) -> tuple[float, str]:
        props = tissue_properties(tissue, b0_t)
        return props.t1_s, props.source

    return t1_of


def test_null_time_solves_the_recovery_equation():
    t1, tr, train = 4.4, 9.0, 0.2
    ti = null_inversion_time(t1, tr, train)
    mz_before = 1 - np.exp(-(tr - ti - train) / t1)
    assert 1 - (1 + mz_before) * np.exp(-ti / t1) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("field", ["1.5T", "3T", "5T", "7T"])
@pytest.mark.parametrize(("name", "nulled", "reference"), [("flair_2d", "csf", "wm"), ("stir_2d", "fat", "muscle")])
def test_tuned_ir_nulls_its_tissue(field, name, nulled, reference):
    scanner = Scanner.resolve(field)
    protocol, notes = tune_for_field(get_protocol(name).with_changes(matrix=N), _t1_at(scanner.b0_t))
    assert notes and notes[0]["parameter"] == "ti_ms" and notes[0]["source"]
    built = protocol.build(scanner)
    inner = slice(N // 4, 3 * N // 4)
    signal = {}
    for tissue in (nulled, reference):
        raw = simulate(_uniform(scanner.b0_t, tissue), built, scanner, noise=False)
        signal[tissue] = np.abs(reconstruct(raw, method="fft").data).reshape(N, N)[inner, inner].mean()
    assert signal[nulled] < 0.05 * signal[reference], (field, name, signal)
    # and the protocol's 3 T default TI does not null it at every field (the tuning is what does it)
    if field == "7T" and name == "stir_2d":
        raw = simulate(
            _uniform(scanner.b0_t, nulled), get_protocol(name).with_changes(matrix=N).build(scanner), scanner
        )
        untuned = np.abs(reconstruct(raw, method="fft").data).reshape(N, N)[inner, inner].mean()
        assert untuned > 0.05 * signal[reference]


def test_stir_ti_follows_fat_t1_with_field():
    ti_15 = tune_for_field(get_protocol("stir_2d"), _t1_at(1.5))[0].ti_s
    ti_7 = tune_for_field(get_protocol("stir_2d"), _t1_at(7.0))[0].ti_s
    assert ti_7 > ti_15 * 1.15  # fat T1 343 -> 423 ms
