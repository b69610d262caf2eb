"""Digital phantoms: tissue library, the ``Phantom`` container and its generators (brain, Shepp-Logan, NIST)."""

from hifield.phantom.brain import brain_phantom
from hifield.phantom.factory import PHANTOM_KINDS, make_phantom
from hifield.phantom.phantom import Phantom
from hifield.phantom.shepp_logan import shepp_logan_kspace, shepp_logan_phantom
from hifield.phantom.system import nist_kspace, nist_phantom, water_fat_kspace, water_fat_phantom
from hifield.phantom.tissues import TissueProperties, chemical_shift_hz, tissue_names, tissue_properties

__all__ = [
    "PHANTOM_KINDS",
    "Phantom",
    "TissueProperties",
    "brain_phantom",
    "chemical_shift_hz",
    "make_phantom",
    "nist_kspace",
    "nist_phantom",
    "shepp_logan_kspace",
    "shepp_logan_phantom",
    "tissue_names",
    "tissue_properties",
    "water_fat_kspace",
    "water_fat_phantom",
]
