"""Protocols that build pypulseq sequences, hardware and safety checks, protocol files and ``.seq`` files.

Names load lazily (PEP 562) and pypulseq only when a sequence is built or read, so importing a submodule such as
``hifield.sequence.seq_io`` costs only what that submodule needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hifield._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "Acquisition": "hifield.sequence.acquisition",
    "BssfpProtocol": "hifield.sequence.library",
    "BuiltSequence": "hifield.sequence.built",
    "EpiProtocol": "hifield.sequence.library",
    "FieldSpec": "hifield.sequence.protocol",
    "Gre3dProtocol": "hifield.sequence.library",
    "GreProtocol": "hifield.sequence.library",
    "ImagingProtocol": "hifield.sequence.protocol",
    "IrTseProtocol": "hifield.sequence.library",
    "MATRIX_LIMITS": "hifield.sequence.acquisition",
    "MATRIX_MAX": "hifield.sequence.protocol",
    "MATRIX_MIN": "hifield.sequence.protocol",
    "MprageProtocol": "hifield.sequence.library",
    "PROTOCOL_KINDS": "hifield.sequence.library",
    "PROTOCOL_TABLE": "hifield.sequence.library",
    "Protocol": "hifield.sequence.protocol",
    "RadialProtocol": "hifield.sequence.library",
    "SafetyReport": "hifield.sequence.safety",
    "SlabProtocol": "hifield.sequence.protocol",
    "SliceProtocol": "hifield.sequence.protocol",
    "SpinEchoProtocol": "hifield.sequence.library",
    "SpiralProtocol": "hifield.sequence.library",
    "TseProtocol": "hifield.sequence.library",
    "Violation": "hifield.sequence.checks",
    "assess": "hifield.sequence.safety",
    "build_with_pattern": "hifield.sequence.acquisition",
    "built_from_seq": "hifield.sequence.seq_io",
    "calibration_prescan": "hifield.sequence.acquisition",
    "check": "hifield.sequence.checks",
    "check_hardware": "hifield.sequence.checks",
    "check_matrix": "hifield.sequence.acquisition",
    "check_safety": "hifield.sequence.safety",
    "check_timing": "hifield.sequence.checks",
    "choose_pattern": "hifield.sequence.acquisition",
    "get_protocol": "hifield.sequence.protocol_io",
    "limit_sar": "hifield.sequence.sar_limits",
    "load_protocol": "hifield.sequence.protocol_io",
    "load_seq": "hifield.sequence.seq_io",
    "plan_acquisition": "hifield.sequence.acquisition",
    "protocol_from_dict": "hifield.sequence.protocol_io",
    "protocol_kinds": "hifield.sequence.protocol_io",
    "protocol_names": "hifield.sequence.protocol_io",
    "protocol_to_dict": "hifield.sequence.protocol_io",
    "raise_for_violations": "hifield.sequence.checks",
    "read_seq": "hifield.sequence.seq_io",
    "save_protocol": "hifield.sequence.protocol_io",
    "with_own_pattern": "hifield.sequence.acquisition",
    "with_pattern": "hifield.sequence.acquisition",
    "write_seq": "hifield.sequence.seq_io",
}
"""Module of each public name."""


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from hifield.sequence.acquisition import MATRIX_LIMITS as MATRIX_LIMITS
    from hifield.sequence.acquisition import Acquisition as Acquisition
    from hifield.sequence.acquisition import build_with_pattern as build_with_pattern
    from hifield.sequence.acquisition import calibration_prescan as calibration_prescan
    from hifield.sequence.acquisition import check_matrix as check_matrix
    from hifield.sequence.acquisition import choose_pattern as choose_pattern
    from hifield.sequence.acquisition import plan_acquisition as plan_acquisition
    from hifield.sequence.acquisition import with_own_pattern as with_own_pattern
    from hifield.sequence.acquisition import with_pattern as with_pattern
    from hifield.sequence.built import BuiltSequence as BuiltSequence
    from hifield.sequence.checks import Violation as Violation
    from hifield.sequence.checks import check as check
    from hifield.sequence.checks import check_hardware as check_hardware
    from hifield.sequence.checks import check_timing as check_timing
    from hifield.sequence.checks import raise_for_violations as raise_for_violations
    from hifield.sequence.library import PROTOCOL_KINDS as PROTOCOL_KINDS
    from hifield.sequence.library import PROTOCOL_TABLE as PROTOCOL_TABLE
    from hifield.sequence.library import BssfpProtocol as BssfpProtocol
    from hifield.sequence.library import EpiProtocol as EpiProtocol
    from hifield.sequence.library import Gre3dProtocol as Gre3dProtocol
    from hifield.sequence.library import GreProtocol as GreProtocol
    from hifield.sequence.library import IrTseProtocol as IrTseProtocol
    from hifield.sequence.library import MprageProtocol as MprageProtocol
    from hifield.sequence.library import RadialProtocol as RadialProtocol
    from hifield.sequence.library import SpinEchoProtocol as SpinEchoProtocol
    from hifield.sequence.library import SpiralProtocol as SpiralProtocol
    from hifield.sequence.library import TseProtocol as TseProtocol
    from hifield.sequence.protocol import MATRIX_MAX as MATRIX_MAX
    from hifield.sequence.protocol import MATRIX_MIN as MATRIX_MIN
    from hifield.sequence.protocol import FieldSpec as FieldSpec
    from hifield.sequence.protocol import ImagingProtocol as ImagingProtocol
    from hifield.sequence.protocol import Protocol as Protocol
    from hifield.sequence.protocol import SlabProtocol as SlabProtocol
    from hifield.sequence.protocol import SliceProtocol as SliceProtocol
    from hifield.sequence.protocol_io import get_protocol as get_protocol
    from hifield.sequence.protocol_io import load_protocol as load_protocol
    from hifield.sequence.protocol_io import protocol_from_dict as protocol_from_dict
    from hifield.sequence.protocol_io import protocol_kinds as protocol_kinds
    from hifield.sequence.protocol_io import protocol_names as protocol_names
    from hifield.sequence.protocol_io import protocol_to_dict as protocol_to_dict
    from hifield.sequence.protocol_io import save_protocol as save_protocol
    from hifield.sequence.safety import SafetyReport as SafetyReport
    from hifield.sequence.safety import assess as assess
    from hifield.sequence.safety import check_safety as check_safety
    from hifield.sequence.sar_limits import limit_sar as limit_sar
    from hifield.sequence.seq_io import built_from_seq as built_from_seq
    from hifield.sequence.seq_io import load_seq as load_seq
    from hifield.sequence.seq_io import read_seq as read_seq
    from hifield.sequence.seq_io import write_seq as write_seq

__all__ = [
    "MATRIX_LIMITS",
    "MATRIX_MAX",
    "MATRIX_MIN",
    "PROTOCOL_KINDS",
    "PROTOCOL_TABLE",
    "Acquisition",
    "BssfpProtocol",
    "BuiltSequence",
    "EpiProtocol",
    "FieldSpec",
    "Gre3dProtocol",
    "GreProtocol",
    "ImagingProtocol",
    "IrTseProtocol",
    "MprageProtocol",
    "Protocol",
    "RadialProtocol",
    "SafetyReport",
    "SlabProtocol",
    "SliceProtocol",
    "SpinEchoProtocol",
    "SpiralProtocol",
    "TseProtocol",
    "Violation",
    "assess",
    "build_with_pattern",
    "built_from_seq",
    "calibration_prescan",
    "check",
    "check_hardware",
    "check_matrix",
    "check_safety",
    "check_timing",
    "choose_pattern",
    "get_protocol",
    "limit_sar",
    "load_protocol",
    "load_seq",
    "plan_acquisition",
    "protocol_from_dict",
    "protocol_kinds",
    "protocol_names",
    "protocol_to_dict",
    "raise_for_violations",
    "read_seq",
    "save_protocol",
    "with_own_pattern",
    "with_pattern",
    "write_seq",
]
