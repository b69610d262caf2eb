"""Protocols that build pypulseq sequences, hardware and safety checks, and protocol files.

pypulseq is imported only when a sequence is built, so importing this package stays light.
"""

from hifield.sequence.built import BuiltSequence
from hifield.sequence.checks import Violation, check, check_hardware, check_timing, raise_for_violations
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

__all__ = [
    "BuiltSequence",
    "FieldSpec",
    "GreProtocol",
    "Protocol",
    "Violation",
    "check",
    "check_hardware",
    "check_timing",
    "get_protocol",
    "load_protocol",
    "protocol_from_dict",
    "protocol_kinds",
    "protocol_names",
    "protocol_to_dict",
    "raise_for_violations",
    "save_protocol",
]
