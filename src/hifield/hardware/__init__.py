"""Scanner hardware: main field, gradients, RF transmit, receive coil arrays, and presets."""

from hifield.hardware.coils import CoilArray
from hifield.hardware.scanner import GradientSystem, RFSystem, Scanner

__all__ = ["CoilArray", "GradientSystem", "RFSystem", "Scanner"]
