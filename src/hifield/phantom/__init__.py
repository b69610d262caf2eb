"""Digital phantoms: tissue library, the ``Phantom`` container and its generators (brain, Shepp-Logan, NIST)."""

from hifield.phantom.brain import brain_phantom
from hifield.phantom.phantom import Phantom
from hifield.phantom.shepp_logan import shepp_logan_kspace, shepp_logan_phantom
from hifield.phantom.tissues import TissueProperties, tissue_names, tissue_properties

__all__ = [
    "Phantom",
    "TissueProperties",
    "brain_phantom",
    "shepp_logan_kspace",
    "shepp_logan_phantom",
    "tissue_names",
    "tissue_properties",
]
