"""The protocol library: one module per sequence family, and the explicit table of its kinds and named protocols.

Nothing registers itself on import: a new family is added to :data:`PROTOCOL_KINDS` (its ``kind`` in protocol
files) and its named defaults to :data:`PROTOCOL_TABLE`, here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType

from hifield.sequence.library.bssfp import BssfpProtocol
from hifield.sequence.library.epi import EpiProtocol
from hifield.sequence.library.gre import GreProtocol
from hifield.sequence.library.gre3d import Gre3dProtocol, MprageProtocol
from hifield.sequence.library.radial import RadialProtocol
from hifield.sequence.library.spiral import SpiralProtocol
from hifield.sequence.library.tse import IrTseProtocol, SpinEchoProtocol, TseProtocol
from hifield.sequence.protocol import ImagingProtocol

PROTOCOL_KINDS: Mapping[str, type[ImagingProtocol]] = MappingProxyType(
    {
        cls.KIND: cls
        for cls in (
            GreProtocol,
            BssfpProtocol,
            EpiProtocol,
            Gre3dProtocol,
            MprageProtocol,
            RadialProtocol,
            SpiralProtocol,
            SpinEchoProtocol,
            TseProtocol,
            IrTseProtocol,
        )
    }
)
"""Protocol class by ``kind`` (the ``kind`` key of protocol files)."""

PROTOCOL_TABLE: Mapping[str, Callable[[], ImagingProtocol]] = MappingProxyType(
    {
        "gre_t1_2d": GreProtocol,
        "bssfp_2d": BssfpProtocol,
        "epi_gre_2d": EpiProtocol,
        "epi_se_2d": partial(
            EpiProtocol, name="epi_se_2d", spin_echo=True, te_s=0.080, tr_s=3.0, flip_angle_rad=math.pi / 2
        ),
        "epi_gre_segmented_2d": partial(
            EpiProtocol, name="epi_gre_segmented_2d", n_shots=4, matrix=128, te_s=0.030, tr_s=0.5
        ),
        "gre_t1_3d": Gre3dProtocol,
        "mprage_3d": MprageProtocol,
        "radial_gre_2d": RadialProtocol,
        "spiral_vd_2d": SpiralProtocol,
        "se_t1_2d": SpinEchoProtocol,
        "tse_t2_2d": TseProtocol,
        "flair_2d": IrTseProtocol,
        "stir_2d": partial(
            IrTseProtocol,
            name="stir_2d",
            tr_s=4.0,
            ti_s=0.265,
            te_s=0.048,
            echo_spacing_s=0.012,
            readout_bandwidth_hz_per_pixel=250.0,
        ),
    }
)
"""Factory of each named default protocol (``hifield protocols``, ``get_protocol(name)``), in listing order."""

NULLED_TISSUE: Mapping[str, str] = MappingProxyType({"flair_2d": "csf", "stir_2d": "fat"})
"""Tissue each library inversion-recovery protocol nulls: its TI is set per field from that tissue's T1."""

__all__ = [
    "NULLED_TISSUE",
    "PROTOCOL_KINDS",
    "PROTOCOL_TABLE",
    "BssfpProtocol",
    "EpiProtocol",
    "Gre3dProtocol",
    "GreProtocol",
    "IrTseProtocol",
    "MprageProtocol",
    "RadialProtocol",
    "SpinEchoProtocol",
    "SpiralProtocol",
    "TseProtocol",
]
