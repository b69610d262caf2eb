"""Per-field protocol defaults: the inversion time that nulls a tissue (FLAIR: CSF, STIR: fat) at the scanner's B0."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hifield.sequence.library import NULLED_TISSUE
from hifield.sequence.library.tse import IrTseProtocol
from hifield.sequence.protocol import ImagingProtocol


def null_inversion_time(t1_s: float, tr_s: float, train_s: float) -> float:
    """Inversion time [s] that nulls a tissue of longitudinal relaxation ``t1_s`` in an IR echo-train sequence.

    Each slice is inverted once per ``tr_s``; its echo train (``train_s`` long) leaves Mz about 0, from which it
    recovers until the next inversion. Mz at the excitation is zero when
    ``exp(TI / T1) = 2 - exp(-(TR - TI - train) / T1)``, solved by bisection (for TR >> T1: TI = T1 ln 2).

    Examples
    --------
    >>> round(null_inversion_time(4.3, 1e6, 0.0) / math.log(2), 3)  # TR >> T1: T1 ln 2
    4.3
    >>> round(null_inversion_time(4.3, 9.0, 0.2), 3)  # FLAIR at 3 T: CSF T1 4.3 s, TR 9 s
    2.458
    """

    def mz(ti: float) -> float:
        recovery = max(tr_s - ti - train_s, 0.0)
        return 1.0 - (2.0 - math.exp(-recovery / t1_s)) * math.exp(-ti / t1_s)

    lo, hi = 0.0, max(tr_s - train_s, 1e-6)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if mz(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def tune_for_field(
    protocol: ImagingProtocol, t1_of: Callable[[str], tuple[float, str]]
) -> tuple[ImagingProtocol, list[dict[str, Any]]]:
    """The protocol with its per-field defaults: for a library IR protocol (``NULLED_TISSUE``), the TI that nulls
    its tissue at the field whose T1 ``t1_of(tissue)`` returns (``(t1 [s], source)``).

    Returns
    -------
    tuple
        The tuned protocol and one record per tuned parameter (``parameter``, ``value``, ``reason``, ``source``).
    """
    tissue = NULLED_TISSUE.get(protocol.name)
    if tissue is None or not isinstance(protocol, IrTseProtocol):
        return protocol, []
    t1_s, source = t1_of(tissue)
    train_s = protocol.echo_train_length * protocol.echo_spacing_s + protocol.rf_duration_s
    ti = round(null_inversion_time(t1_s, protocol.tr_s, train_s), 3)
    tuned = protocol.with_changes(ti_s=ti)
    note = {
        "parameter": "ti_ms",
        "value": round(ti * 1e3, 3),
        "reason": f"nulls {tissue} (T1 {t1_s * 1e3:.0f} ms) at TR {protocol.tr_s * 1e3:g} ms",
        "source": source,
    }
    return tuned, [note]
