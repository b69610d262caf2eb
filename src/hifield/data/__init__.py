"""Typed containers that carry their header: raw data, images, coil maps, geometry."""

from hifield.data.geometry import centred_affine, voxel_size_m
from hifield.data.image import CoilMaps, Image, ImageHeader
from hifield.data.raw import RawData, RawHeader, Trajectory

__all__ = [
    "CoilMaps",
    "Image",
    "ImageHeader",
    "RawData",
    "RawHeader",
    "Trajectory",
    "centred_affine",
    "voxel_size_m",
]
