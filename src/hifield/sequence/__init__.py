"""Protocols that build pypulseq sequences, hardware and safety checks, protocol files and ``.seq`` files.

pypulseq is imported only when a sequence is built or read, so importing this package stays light.
"""

from hifield.sequence.acquisition import (
    MATRIX_LIMITS,
    Acquisition,
    build_with_pattern,
    calibration_prescan,
    check_matrix,
    choose_pattern,
    plan_acquisition,
    with_own_pattern,
    with_pattern,
)
from hifield.sequence.built import BuiltSequence
from hifield.sequence.checks import Violation, check, check_hardware, check_timing, raise_for_violations
from hifield.sequence.library import (
    PROTOCOL_KINDS,
    PROTOCOL_TABLE,
    BssfpProtocol,
    EpiProtocol,
    Gre3dProtocol,
    GreProtocol,
    IrTseProtocol,
    MprageProtocol,
    RadialProtocol,
    SpinEchoProtocol,
    SpiralProtocol,
    TseProtocol,
)
from hifield.sequence.protocol import (
    MATRIX_MAX,
    MATRIX_MIN,
    FieldSpec,
    ImagingProtocol,
    Protocol,
    SlabProtocol,
    SliceProtocol,
)
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
from hifield.sequence.sar_limits import limit_sar
from hifield.sequence.seq_io import built_from_seq, load_seq, read_seq, write_seq

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
