"""How a volume looks: blackbody colours, the emission ramp and smoke tint, and a look fitted to a
reference image without any training (colour statistics only).

All colours are scene-linear ACEScg (AP1 primaries, ACES ~D60 white).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gvfx.errors import InputError

log = logging.getLogger(__name__)

#: ACEScg (AP1) -> CIE XYZ, from the ACES specification (S-2014-004).
AP1_TO_XYZ = np.array([[0.6624541811, 0.1340042065, 0.1561876870],
                       [0.2722287168, 0.6740817658, 0.0536895174],
                       [-0.0055746495, 0.0040607335, 1.0103391003]])
XYZ_TO_AP1 = np.linalg.inv(AP1_TO_XYZ)
#: ACEScg luminance weights (the Y row of AP1_TO_XYZ).
LUMA_AP1 = AP1_TO_XYZ[1]

_LAMBDA_NM = np.arange(380.0, 781.0, 5.0)


def _lobe(lam: np.ndarray, mu: float, s1: float, s2: float) -> np.ndarray:
    s = np.where(lam < mu, s1, s2)
    return np.exp(-0.5 * ((lam - mu) / s) ** 2)


def _cie1931_cmf(lam: np.ndarray) -> np.ndarray:
    """(N, 3) CIE 1931 2-degree colour matching functions, by the multi-lobe piecewise-Gaussian fit of
    Wyman, Sloan & Shirley (JCGT 2013); within a few percent of the tabulated CMFs."""
    x = (1.056 * _lobe(lam, 599.8, 37.9, 31.0) + 0.362 * _lobe(lam, 442.0, 16.0, 26.7)
         - 0.065 * _lobe(lam, 501.1, 20.4, 26.2))
    y = 0.821 * _lobe(lam, 568.8, 46.9, 40.5) + 0.286 * _lobe(lam, 530.9, 16.3, 31.1)
    z = 1.217 * _lobe(lam, 437.0, 11.8, 36.0) + 0.681 * _lobe(lam, 459.0, 26.0, 13.8)
    return np.stack([x, y, z], axis=-1)


_CMF = _cie1931_cmf(_LAMBDA_NM)


def _planck_xyz(temperature_K: np.ndarray) -> np.ndarray:
    """(..., 3) XYZ of a blackbody: Planck's law integrated over 380-780 nm at 5 nm against the CMFs
    (arbitrary absolute scale, consistent across temperatures)."""
    t = np.maximum(np.asarray(temperature_K, dtype=np.float64), 1.0)[..., None]
    lam_m = _LAMBDA_NM * 1e-9
    c2 = 1.4387769e-2  # m K
    with np.errstate(over="ignore"):
        spectrum = 1.0 / (lam_m ** 5 * np.expm1(np.minimum(c2 / (lam_m * t), 700.0)))
    return spectrum @ _CMF * 1e-30


def blackbody_rgb(temperature_K: np.ndarray | float) -> np.ndarray:
    """(..., 3) float32 ACEScg colour of a blackbody at ``temperature_K``, normalised to luminance 1.

    Planck's law x CIE 1931 CMFs (analytic fit) -> XYZ -> AP1 (no chromatic adaptation, so ~6000 K
    reads white); negative components (outside AP1) are clipped. Hue only: see
    ``blackbody_intensity`` for brightness.
    """
    rgb = _planck_xyz(temperature_K) @ XYZ_TO_AP1.T
    rgb = np.maximum(rgb, 0.0)
    lum = rgb @ LUMA_AP1
    return (rgb / np.maximum(lum, 1e-30)[..., None]).astype(np.float32)


def blackbody_intensity(temperature_K: np.ndarray | float, reference_K: float = 1500.0) -> np.ndarray:
    """Relative emitted brightness, ``(T / reference_K) ** 4`` (Stefan-Boltzmann): an artist-friendly
    curve that rises with temperature (the real visible-band luminance rises far faster)."""
    t = np.asarray(temperature_K, dtype=np.float64)
    return (np.maximum(t, 0.0) / reference_K) ** 4


@dataclass(frozen=True)
class Look:
    """A volume's look.

    ``emission_ramp``: (K, 3) ACEScg emitted radiance over normalised temperature 0..1 (entry 0 is the
    coldest, usually black; the hottest entry has luminance ~1, scaled by the effect's emission scale).
    ``smoke_tint``: (3,) ACEScg albedo of the smoke. ``density_scale``: extinction per unit density
    per metre.
    """

    emission_ramp: np.ndarray
    smoke_tint: np.ndarray
    density_scale: float

    def emission(self, t_norm: np.ndarray) -> np.ndarray:
        """(..., 3) emitted radiance at normalised temperatures ``t_norm`` (linear ramp lookup)."""
        ramp = np.asarray(self.emission_ramp, dtype=np.float64)
        x = np.linspace(0.0, 1.0, len(ramp))
        t = np.clip(np.asarray(t_norm, dtype=np.float64), 0.0, 1.0)
        return np.stack([np.interp(t, x, ramp[:, c]) for c in range(3)], axis=-1).astype(np.float32)


RAMP_SIZE = 16
#: Temperature range the default fire ramp spans (normalised 0..1 -> these kelvins).
FIRE_T_RANGE_K = (900.0, 2600.0)


def _blackbody_ramp(t_lo_K: float, t_hi_K: float, n: int = RAMP_SIZE) -> np.ndarray:
    """(n, 3) ramp: blackbody hue at each temperature times a brightness rising as t^3 from 0 at the
    cold end, normalised so the hottest entry has luminance 1."""
    t = np.linspace(0.0, 1.0, n)
    temps = t_lo_K + (t_hi_K - t_lo_K) * t
    bright = blackbody_intensity(temps, t_hi_K) * t ** 1.5
    ramp = blackbody_rgb(temps) * bright[:, None]
    return (ramp / max(float(ramp[-1] @ LUMA_AP1), 1e-12)).astype(np.float32)


def default_look(effect: str) -> Look:
    """The built-in look of ``effect`` (smoke, fire, explosion)."""
    ramp = _blackbody_ramp(*FIRE_T_RANGE_K)
    if effect == "smoke":
        return Look(ramp, np.array([0.55, 0.55, 0.56], np.float32), 6.0)
    if effect == "explosion":
        return Look(_blackbody_ramp(1000.0, 3000.0), np.array([0.1, 0.09, 0.085], np.float32), 10.0)
    return Look(ramp, np.array([0.07, 0.065, 0.06], np.float32), 8.0)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ACEScg luminance of (..., 3) colours."""
    return np.asarray(rgb, dtype=np.float64)[..., :3] @ LUMA_AP1


def fit_look(reference_rgb_acescg: np.ndarray, n: int = RAMP_SIZE, base: Look | None = None) -> Look:
    """A look fitted to a reference image (H, W, 3|4) ACEScg, without training.

    Emission ramp: the brightest 25% of pixels sorted by luminance, the mean colour of each of ``n-1``
    luminance-quantile bins becomes a ramp entry (entry 0 is black); the ramp is normalised so its top
    has luminance 1, keeping the reference's hue progression (cool edges -> hot core). Smoke: the
    darkest 30% of pixels give the tint (their mean colour, normalised to luminance 0.5) and the
    density (darker smoke -> denser: ``base.density_scale * clip(ln(lum)/ln(0.18), 0.5, 3)``).
    """
    base = base or default_look("fire")
    img = np.asarray(reference_rgb_acescg, dtype=np.float64)
    if img.ndim != 3 or img.shape[2] < 3:
        raise InputError(f"reference image has shape {img.shape}, expected (H, W, 3|4)")
    px = np.maximum(img[..., :3].reshape(-1, 3), 0.0)
    px = px[np.all(np.isfinite(px), axis=1)]
    if len(px) < 8:
        raise InputError("reference image has too few valid pixels to fit a look")
    lum = px @ LUMA_AP1
    order = np.argsort(lum, kind="stable")
    px, lum = px[order], lum[order]
    bright = px[int(0.75 * len(px)):]
    bins = np.array_split(bright, n - 1)
    ramp = np.zeros((n, 3))
    for i, b in enumerate(bins):
        ramp[i + 1] = b.mean(axis=0) if len(b) else ramp[i]
    top = float(ramp[-1] @ LUMA_AP1)
    ramp = ramp / top if top > 1e-9 else base.emission_ramp.astype(np.float64)
    dark = px[: max(1, int(0.3 * len(px)))]
    dark_mean = dark.mean(axis=0)
    dark_lum = float(dark_mean @ LUMA_AP1)
    tint = dark_mean / dark_lum * 0.5 if dark_lum > 1e-6 else base.smoke_tint.astype(np.float64)
    tint = np.clip(tint, 0.0, 1.0)
    density = base.density_scale * float(np.clip(np.log(max(dark_lum, 1e-3)) / np.log(0.18), 0.5, 3.0))
    log.info("fitted look: top emission %s, smoke tint %s, density %.2f", ramp[-1].round(3), tint.round(3), density)
    return Look(ramp.astype(np.float32), tint.astype(np.float32), density)


def load_reference_rgb(path: str | Path, field: str = "reference") -> np.ndarray:
    """A reference image as (H, W, 3|4) float32 scene-linear ACEScg.

    PNG/JPG (and other 8/16-bit formats) are display sRGB and go through ``gvfx.color.from_display``;
    EXR/HDR are taken as scene-linear ACEScg already. Missing or unreadable -> ``InputError`` naming the
    file and the job field.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{field} image not found", path=p, hint=f"check the path in the job's {field} field")
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(p))
    if inp is None:
        raise InputError(f"{field} image cannot be read: {oiio.geterror()}", path=p,
                         hint="give a PNG, JPG or EXR image")
    try:
        pixels = inp.read_image("float")
        if pixels is None:
            raise InputError(f"{field} image cannot be read: {inp.geterror()}", path=p,
                             hint="the file may be truncated or corrupt")
    finally:
        inp.close()
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif pixels.shape[2] == 2:
        pixels = np.concatenate([np.repeat(pixels[..., :1], 3, axis=2), pixels[..., 1:2]], axis=2)
    pixels = pixels[..., :4]
    if p.suffix.lower() in (".exr", ".hdr"):
        return pixels
    from gvfx import color

    return np.ascontiguousarray(color.from_display(pixels, dst="ACEScg"), dtype=np.float32)
