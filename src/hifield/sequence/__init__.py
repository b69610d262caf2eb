"""Protocols that build pypulseq sequences, hardware and safety checks, protocol files and ``.seq`` files.

pypulseq is imported only when a sequence is built or read, so importing this package stays light.
"""

from hifield.sequence.acquisition import (
    MATRIX_LIMITS,
    Acquisition,
    build_with_pattern,
    calibration_prescan,
    check_matrix,
    plan_acquisition,
    with_own_pattern,
    with_pattern,
)
from hifield.sequence.built import BuiltSequence
from hifield.sequence.checks import Violation, check, check_hardware, check_timing, raise_for_violations
from hifield.sequence.library.bssfp import BssfpProtocol
from hifield.sequence.library.epi import EpiProtocol
from hifield.sequence.library.gre3d import Gre3dProtocol, MprageProtocol
from hifield.sequence.library.radial import RadialProtocol
from hifield.sequence.library.spiral import SpiralProtocol
from hifield.sequence.library.tse import IrTseProtocol, SpinEchoProtocol, TseProtocol
from hifield.sequence.protocol import FieldSpec, GreProtocol, Protocol
from hifield.sequence.protocol_io import (
    get_protocol,
    load_protocol,
    protocol_from_dict,
    protocol_kinds,
    protocol_names,
    protocol_to_dict,
    save_protocol,
)
from hifield.sequence.safety import SafetyReport, assess, check_safety
from hifield.sequence.seq_io import built_from_seq, load_seq, read_seq, write_seq

__all__ = [
    "MATRIX_LIMITS",
    "Acquisition",
    "BssfpProtocol",
    "BuiltSequence",
    "EpiProtocol",
    "FieldSpec",
    "Gre3dProtocol",
    "GreProtocol",
    "IrTseProtocol",
    "MprageProtocol",
    "Protocol",
    "RadialProtocol",
    "SafetyReport",
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
    "get_protocol",
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
