"""The scanner: main field, gradient system, RF transmit system and receive array, with vendor-neutral presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hifield._pypulseq import import_pypulseq
from hifield.errors import ConfigError
from hifield.hardware.coils import CoilArray
from hifield.units import GAMMA_BAR_HZ_PER_T, parse_field_strength

if TYPE_CHECKING:
    import pypulseq


@dataclass(frozen=True)
class GradientSystem:
    """Gradient coil and amplifiers (per-axis limits are equal for the presets)."""

    max_grad_t_per_m: float
    """Maximum gradient amplitude per axis [T/m]."""
    max_slew_t_per_m_per_s: float
    """Maximum slew rate per axis [T/m/s]."""
    max_rms_grad_t_per_m: float
    """Largest RMS gradient amplitude per axis over a 10 s window (duty-cycle limit) [T/m]."""
    raster_time_s: float = 10e-6
    """Gradient raster time [s]."""


@dataclass(frozen=True)
class RFSystem:
    """RF transmit chain and timing of RF and ADC events."""

    max_b1_t: float
    """Peak B1+ amplitude the body coil can produce [T]."""
    amplifier_power_w: float
    """Peak RF amplifier power [W]."""
    n_transmit_channels: int = 1
    """Independent transmit channels (1 = single-channel/quadrature, 8 = parallel transmit)."""
    dead_time_s: float = 100e-6
    """RF dead time before a pulse [s]."""
    ringdown_time_s: float = 30e-6
    """RF ringdown time after a pulse [s]."""
    adc_dead_time_s: float = 10e-6
    """ADC dead time [s]."""
    raster_time_s: float = 1e-6
    """RF raster time [s]."""
    adc_raster_time_s: float = 100e-9
    """ADC raster time [s]."""
    block_raster_time_s: float = 10e-6
    """Block duration raster [s]."""


@dataclass(frozen=True)
class Scanner:
    """A virtual MR scanner.

    Examples
    --------
    >>> s = Scanner.preset("3T")
    >>> s.b0_t, round(s.gradients.max_grad_t_per_m * 1e3), s.receive.n_coils
    (3.0, 80, 16)
    """

    name: str
    """Vendor-neutral preset or user name."""
    b0_t: float
    """Main magnetic field [T]."""
    gradients: GradientSystem
    """Gradient system."""
    rf: RFSystem
    """RF transmit system."""
    receive: CoilArray = field(repr=False)
    """Receive coil array."""
    bore_diameter_m: float = 0.6
    """Patient bore diameter [m]."""

    @property
    def larmor_frequency_hz(self) -> float:
        """Proton resonance frequency [Hz]."""
        return GAMMA_BAR_HZ_PER_T * self.b0_t

    @classmethod
    def preset(cls, name: str | float, *, n_coils: int | None = None) -> Scanner:
        """A preset scanner: ``"1.5T"``, ``"3T"``, ``"5T"`` or ``"7T"`` (a number of tesla is accepted too).

        Parameters
        ----------
        name
            Preset name or field strength.
        n_coils
            Override the number of receive channels of the head array.

        Raises
        ------
        ConfigError
            For an unknown preset.
        """
        try:
            b0 = parse_field_strength(name)
        except ValueError:
            b0 = -1.0
        key = _PRESET_KEYS.get(b0)
        if key is None:
            allowed = ", ".join(_PRESETS)
            raise ConfigError(f"unknown scanner preset {name!r}; choose one of {allowed}")
        params = _PRESETS[key]
        channels = n_coils if n_coils is not None else int(params["n_coils"])
        if channels < 1:
            raise ConfigError(f"number of receive coils must be at least 1; got {channels}")
        return cls(
            name=f"hifield {key}",
            b0_t=float(params["b0_t"]),
            gradients=GradientSystem(
                max_grad_t_per_m=float(params["gmax"]),
                max_slew_t_per_m_per_s=float(params["smax"]),
                max_rms_grad_t_per_m=float(params["grms"]),
            ),
            rf=RFSystem(
                max_b1_t=float(params["b1max"]),
                amplifier_power_w=float(params["power_w"]),
                n_transmit_channels=int(params["n_tx"]),
            ),
            receive=CoilArray.head_array(channels, b0_t=float(params["b0_t"])),
            bore_diameter_m=float(params["bore_m"]),
        )

    @classmethod
    def load(cls, path: str | Path) -> Scanner:
        """A user scanner from a YAML file, units in the key names (the file boundary).

        Keys: ``name``, ``b0_t``, ``max_grad_mt_per_m``, ``max_slew_t_per_m_per_s``, ``max_rms_grad_mt_per_m``,
        ``max_b1_ut``, ``amplifier_power_kw``, ``n_transmit_channels``, ``n_receive_coils``, ``bore_diameter_cm``;
        any key left out takes the value of the preset nearest in field.

        Raises
        ------
        ConfigError
            For a missing or malformed file, an unknown key or a value out of range (one line naming it).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "lab.yaml"
        >>> _ = f.write_text("name: lab 3T\\nb0_t: 2.89\\nmax_grad_mt_per_m: 45\\n")
        >>> s = Scanner.load(f)
        >>> s.name, s.b0_t, round(s.gradients.max_grad_t_per_m, 3), s.gradients.max_slew_t_per_m_per_s
        ('lab 3T', 2.89, 0.045, 200.0)
        """
        import yaml

        path = Path(path)
        try:
            if path.stat().st_size > 1024 * 1024:
                raise ConfigError(f"scanner file {str(path)!r} is larger than 1024 KiB; is it a scanner YAML file?")
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"scanner file {str(path)!r} cannot be read ({error.strerror}); check the path") from None
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"scanner file {str(path)!r} is not UTF-8 text (byte {error.start}); pass a YAML file"
            ) from None
        except (yaml.YAMLError, RecursionError, ValueError) as error:
            raise ConfigError(f"scanner file {str(path)!r} is not valid YAML ({type(error).__name__})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"scanner file {str(path)!r} must be a mapping of key: value")
        unknown = sorted(str(key) for key in set(data) - set(_FILE_KEYS))  # YAML keys may be numbers
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r} in {path.name}; allowed: {', '.join(_FILE_KEYS)}")
        values: dict[str, float] = {}
        for key, value in data.items():
            if key == "name":
                continue
            low, high = _FILE_KEYS[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= float(value) <= high:
                raise ConfigError(f"{key} = {value!r} in {path.name} is out of range; allowed {low:g} to {high:g}")
            values[key] = float(value)
        b0 = values.get("b0_t", 3.0)
        base = cls.preset(min(_PRESET_KEYS, key=lambda f: abs(f - b0)))
        gradients = base.gradients
        rf = base.rf
        return cls(
            name=str(data.get("name", path.stem)),
            b0_t=b0,
            gradients=dataclasses.replace(
                gradients,
                max_grad_t_per_m=values.get("max_grad_mt_per_m", gradients.max_grad_t_per_m * 1e3) * 1e-3,
                max_slew_t_per_m_per_s=values.get("max_slew_t_per_m_per_s", gradients.max_slew_t_per_m_per_s),
                max_rms_grad_t_per_m=values.get("max_rms_grad_mt_per_m", gradients.max_rms_grad_t_per_m * 1e3) * 1e-3,
            ),
            rf=dataclasses.replace(
                rf,
                max_b1_t=values.get("max_b1_ut", rf.max_b1_t * 1e6) * 1e-6,
                amplifier_power_w=values.get("amplifier_power_kw", rf.amplifier_power_w * 1e-3) * 1e3,
                n_transmit_channels=int(values.get("n_transmit_channels", rf.n_transmit_channels)),
            ),
            receive=CoilArray.head_array(int(values.get("n_receive_coils", base.receive.n_coils)), b0_t=b0),
            bore_diameter_m=values.get("bore_diameter_cm", base.bore_diameter_m * 100) / 100,
        )

    @classmethod
    def resolve(cls, spec: str) -> Scanner:
        """A preset name (``"3T"``) or the path of a scanner YAML file (see :meth:`load`)."""
        if spec.endswith((".yaml", ".yml")):
            return cls.load(spec)
        return cls.preset(spec)

    @staticmethod
    def preset_names() -> tuple[str, ...]:
        """Names of the presets."""
        return tuple(_PRESETS)

    def with_receive_coils(self, n_coils: int) -> Scanner:
        """The same scanner with a head array of ``n_coils`` channels.

        Raises
        ------
        ConfigError
            If ``n_coils`` < 1.
        """
        if n_coils < 1:
            raise ConfigError(f"number of receive coils must be at least 1; got {n_coils}")
        return dataclasses.replace(self, receive=CoilArray.head_array(n_coils, b0_t=self.b0_t))

    def replace(self, **changes: Any) -> Scanner:
        """Copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def pypulseq_opts(self, *, safety_margin: float = 0.0) -> pypulseq.Opts:
        """The scanner's limits as a ``pypulseq.Opts`` (units converted to pypulseq's at this boundary).

        Parameters
        ----------
        safety_margin
            Fraction (0..1) by which sequence design stays below the hardware limits.
        """
        pp = import_pypulseq()

        scale = 1.0 - safety_margin
        return pp.Opts(
            max_grad=self.gradients.max_grad_t_per_m * 1e3 * scale,
            grad_unit="mT/m",
            max_slew=self.gradients.max_slew_t_per_m_per_s * scale,
            slew_unit="T/m/s",
            rf_dead_time=self.rf.dead_time_s,
            rf_ringdown_time=self.rf.ringdown_time_s,
            adc_dead_time=self.rf.adc_dead_time_s,
            rf_raster_time=self.rf.raster_time_s,
            grad_raster_time=self.gradients.raster_time_s,
            adc_raster_time=self.rf.adc_raster_time_s,
            block_duration_raster=self.rf.block_raster_time_s,
            B0=self.b0_t,
        )


# Gradient and RF figures: see shared/reference/physics-safety.md section 2.3 (vendor pages via pulseq-systems).
_PRESETS: dict[str, dict[str, float]] = {
    "1.5T": {
        "b0_t": 1.5,
        "gmax": 45e-3,
        "smax": 200.0,
        "grms": 28e-3,
        "b1max": 23e-6,
        "power_w": 20e3,
        "n_tx": 1,
        "n_coils": 16,
        "bore_m": 0.70,
    },
    "3T": {
        "b0_t": 3.0,
        "gmax": 80e-3,
        "smax": 200.0,
        "grms": 45e-3,
        "b1max": 20e-6,
        "power_w": 35e3,
        "n_tx": 2,
        "n_coils": 16,
        "bore_m": 0.60,
    },
    "5T": {
        "b0_t": 5.0,
        "gmax": 120e-3,
        "smax": 200.0,
        "grms": 60e-3,
        "b1max": 15e-6,
        "power_w": 8 * 4e3,
        "n_tx": 8,
        "n_coils": 32,
        "bore_m": 0.60,
    },
    "7T": {
        "b0_t": 7.0,
        "gmax": 80e-3,
        "smax": 200.0,
        "grms": 45e-3,
        "b1max": 13e-6,
        "power_w": 8 * 1e3,
        "n_tx": 8,
        "n_coils": 32,
        "bore_m": 0.60,
    },
}
_PRESET_KEYS: dict[float, str] = {v["b0_t"]: k for k, v in _PRESETS.items()}

# Keys of a scanner file with their allowed ranges (units in the names).
_FILE_KEYS: dict[str, tuple[float, float]] = {
    "name": (0, 0),
    "b0_t": (0.1, 11.7),
    "max_grad_mt_per_m": (1.0, 1000.0),
    "max_slew_t_per_m_per_s": (1.0, 2000.0),
    "max_rms_grad_mt_per_m": (1.0, 1000.0),
    "max_b1_ut": (1.0, 100.0),
    "amplifier_power_kw": (0.1, 100.0),
    "n_transmit_channels": (1, 64),
    "n_receive_coils": (1, 128),
    "bore_diameter_cm": (20.0, 100.0),
}
