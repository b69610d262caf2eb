"""The mask, calibration region and acceleration a simulated Cartesian scan records: from the sequence's pattern."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from hifield.errors import SequenceError

if TYPE_CHECKING:
    from hifield.sequence import BuiltSequence


@dataclass(frozen=True)
class RecordedSampling:
    """What the raw data record about their sampling."""

    mask: NDArray[np.bool_]
    """Acquired positions ``(k2, k1, 1)``."""
    calibration: NDArray[np.bool_] | None
    """Calibration (ACS) positions ``(k2, k1, 1)``, None when there are none or every line was acquired."""
    acceleration: float
    """Grid lines / acquired lines."""

    @property
    def full(self) -> bool:
        """Every line acquired (the raw data then carry no mask)."""
        return bool(self.mask.all())


def recorded_sampling(sequence: BuiltSequence, placed: NDArray[np.bool_]) -> RecordedSampling:
    """The sampling a simulated Cartesian scan of ``sequence`` records, read from the pattern it carries.

    Parameters
    ----------
    sequence
        The built sequence; ``sequence.pattern`` (attached by :func:`hifield.sequence.with_pattern`) gives the
        mask, the calibration region and R.
    placed
        ``(k2, k1)``: where the engine placed the sequence's readouts (by their ADC labels). It only checks the
        pattern, and is the mask of a sequence that carries no pattern (a foreign ``.seq`` file, a protocol built
        on its own), which has no calibration region.

    Raises
    ------
    SequenceError
        If the readouts do not land where the pattern says.
    """
    from hifield.sampling import on_grid

    grid = (int(placed.shape[0]), int(placed.shape[1]))
    pattern = getattr(sequence, "pattern", None)  # hand-made stand-ins of a BuiltSequence may lack it
    if pattern is None:
        mask = placed[:, :, np.newaxis].copy()
        calibration = None
    else:
        mask, calib = on_grid(pattern, axis=sequence.pattern_axis, grid=grid)
        if not np.array_equal(mask[:, :, 0], placed):
            raise SequenceError(
                f"the readouts of {sequence.protocol.name!r} land on {int(placed.sum())} (k2, k1) lines but its "
                f"{pattern.name} pattern has {int(mask.sum())}; build it with hifield.sequence.with_pattern"
            )
        calibration = calib if calib.any() and not mask.all() else None
    n_acquired = int(np.count_nonzero(mask))
    return RecordedSampling(mask=mask, calibration=calibration, acceleration=mask.size / max(n_acquired, 1))
