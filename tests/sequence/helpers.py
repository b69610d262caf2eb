"""Test helpers: read ADC labels and RF times back from a built pypulseq sequence."""

from __future__ import annotations

import numpy as np


def adc_labels(seq) -> list[dict[str, int]]:
    """Label state (LIN, ECO, PAR, ...) at every ADC, as a generic reader sees it."""
    state: dict[str, int] = {}
    out = []
    for block_id in seq.block_events:
        block = seq.get_block(block_id)
        labels = getattr(block, "label", None) or {}
        for entry in labels.values() if isinstance(labels, dict) else labels:
            state[entry.label] = entry.value
        if block.adc is not None:
            out.append(dict(state))
    return out


def adc_centre_times(seq, n_samples: int) -> np.ndarray:
    """Time of sample ``n_samples // 2`` of every ADC [s]."""
    t_adc = seq.adc_times()[0].reshape(-1, n_samples)
    return t_adc[:, n_samples // 2]
