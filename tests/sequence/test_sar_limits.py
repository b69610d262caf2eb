"""SAR that limits: a whole stack over the head SAR limit is refused with what would pass; --adapt applies it."""

from __future__ import annotations

import math
import re

import pytest

from hifield.errors import SafetyLimitError
from hifield.hardware.scanner import Scanner
from hifield.sequence import assess, get_protocol, limit_sar
from hifield.sequence.sar_limits import SarExcess, rf_energy_by_use, suggest_sar_changes, worst_sar

# a small-matrix TSE stack at its 3 T contrast (ETL 8, 180 degree refocusing, TR 3 s, 12 slices)
TSE_STACK = get_protocol("tse_t2_2d").with_changes(matrix=32, echo_train_length=8, te_s=0.048, tr_s=3.0, n_slices=12)


def test_stack_sar_counts_every_slice():
    scanner = Scanner.preset("7T")
    one = worst_sar(assess(TSE_STACK.with_changes(n_slices=1).build(scanner), scanner))
    twelve = worst_sar(assess(TSE_STACK.build(scanner), scanner))
    assert twelve.value_w_per_kg == pytest.approx(12 * one.value_w_per_kg, rel=1e-6)


def test_each_suggestion_alone_brings_the_stack_within_the_limit():
    scanner = Scanner.preset("7T")
    built = TSE_STACK.build(scanner)
    excess = worst_sar(assess(built, scanner))
    assert excess.ratio > 1.5 and excess.quantity == "head SAR (6 min)"
    suggestions = suggest_sar_changes(TSE_STACK, built, excess)
    assert [s.field for s in suggestions] == ["tr_s", "refocusing_angle_rad", "n_slices"]
    for s in suggestions:
        changed = TSE_STACK.with_changes(**{s.field: s.value})
        after = worst_sar(assess(changed.build(scanner), scanner))
        # within the limit, and not needlessly far below it (values rounded to what a console shows)
        assert 0.75 < after.ratio <= 1.0 + 1e-6, (s.text, after.ratio)


def test_suggestions_follow_the_scaling_laws():
    built = TSE_STACK.build(Scanner.preset("7T"))
    by_field = {s.field: s for s in suggest_sar_changes(TSE_STACK, built, SarExcess("head SAR (6 min)", 6.4, 3.2))}
    assert by_field["tr_s"].value == pytest.approx(6.0)  # SAR ~ 1 / TR
    assert by_field["n_slices"].value == 6  # SAR ~ slices
    # SAR ~ flip^2 of the refocusing pulses only, the excitation unchanged: halving SAR needs (1 - f) + f x^2 = 1/2
    energy = rf_energy_by_use(built.seq)
    f = energy["refocusing"] / sum(energy.values())
    x = math.sqrt((0.5 - (1 - f)) / f)
    assert math.degrees(by_field["refocusing_angle_rad"].value) == pytest.approx(math.floor(180 * x))
    assert by_field["refocusing_angle_rad"].value < math.pi / math.sqrt(2)  # below the refocusing-only answer


def test_refusal_names_the_limit_and_what_would_pass():
    scanner = Scanner.preset("7T")
    with pytest.raises(SafetyLimitError) as err:
        limit_sar(TSE_STACK, TSE_STACK.build(scanner), scanner)
    message = str(err.value)
    assert re.fullmatch(
        r"refused: head SAR \(6 min\) \d+\.\d W/kg > 3\.2 W/kg: raise TR to [\d.]+ s, lower the refocusing flip "
        r"angle to \d+ deg, or scan \d+ slices \(or use --adapt\)",
        message,
    ), message


def test_adapt_applies_the_least_change_and_passes():
    scanner = Scanner.preset("7T")
    protocol, built, record = limit_sar(TSE_STACK, TSE_STACK.build(scanner), scanner, adapt=True)
    assert record is not None and record["applied"] in record["suggestions"]
    assert record["parameter"] == "refocusing_angle_deg" and record["from"] == pytest.approx(180.0)
    assert protocol.refocusing_angle_rad == pytest.approx(math.radians(record["to"]))
    assert worst_sar(assess(built, scanner)).ratio <= 1 + 1e-6
    assert record["sar_after_w_per_kg"] <= 3.2


def test_within_limits_is_untouched():
    scanner = Scanner.preset("3T")
    p = TSE_STACK.with_changes(n_slices=2)
    built = p.build(scanner)
    assert limit_sar(p, built, scanner, adapt=True) == (p, built, None)


@pytest.mark.parametrize("name", ["tse_t2_2d", "flair_2d"])
def test_whole_brain_stack_at_3t_parameters_is_refused_at_7t(name):
    """24 x 5 mm (whole brain) at the protocol's 3 T parameters exceeds the 7 T head SAR limit."""
    p = get_protocol(name).with_changes(matrix=64, n_slices=24)
    if name == "tse_t2_2d":
        p = p.with_changes(tr_s=5.0)  # 24 slices of a 16-echo train need 4.8 s
    scanner = Scanner.preset("7T")
    with pytest.raises(SafetyLimitError, match=r"head SAR .* > 3\.2 W/kg"):
        limit_sar(p, p.build(scanner), scanner)
    _, built, record = limit_sar(p, p.build(scanner), scanner, adapt=True)
    assert record is not None and worst_sar(assess(built, scanner)).ratio <= 1 + 1e-6
