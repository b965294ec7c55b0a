"""What the volume effects inject into the fluid each step: a fire's fuel with its buoyant puffing, a
smoke source, an explosion's fireball with its pressure-driven growth.

Fire puffing: a buoyant diffusion flame of base diameter ``D`` (m) sheds a toroidal vortex from its base
periodically, at ``f = 1.5 / sqrt(D)`` Hz over six decades of size (Cetegen & Ahmed 1993, Combust. Flame
93; ``f = 0.48 sqrt(g / D)``, a Froude scaling). The grid cannot resolve that base instability, so the
source supplies its effect: the fuel flow and the inflow swell and neck at that frequency (with a slow
random drift of the phase, as in a real flame), and a radial pinch at the base in the necking half of
the cycle, which the solver turns into a bulge that detaches and rises as a flamelet.

Explosion: the fireball radius follows ``R(t) = R_max (t / t_grow) ** 0.4`` (Sedov-Taylor-like, a
blast whose energy is released at once), then stops growing as the pressure equalises. The solver gets
that as a target divergence ``3 R'/R = 1.2 / t`` inside the ball (decaying after ``t_grow``), so the
growth is the projection's pressure pushing the gas out, not a painted ball; the initial core has a
hot centre (a radial temperature profile) that the self-similar expansion keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gvfx.engines.sim.fluid import FluidSim, cell_to_face

#: Cetegen & Ahmed's puffing constant, Hz * sqrt(m).
PUFF_CONSTANT = 1.5
#: Sedov-Taylor radius exponent.
BLAST_EXPONENT = 0.4


def puffing_hz(diameter_m: float) -> float:
    """Puffing frequency (Hz) of a buoyant flame of base diameter ``diameter_m``."""
    return PUFF_CONSTANT / math.sqrt(max(diameter_m, 1e-3))


def noise(gen: torch.Generator, shape: tuple[int, int, int], cells: float = 4) -> torch.Tensor:
    """Smooth 0..1 value noise (one random value per ``cells`` voxels, trilinear) from ``gen``."""
    coarse = [max(2, int(n // cells) + 1) for n in shape]
    r = torch.rand((1, 1, *coarse), generator=gen)
    return F.interpolate(r, size=shape, mode="trilinear", align_corners=True)[0, 0]


@dataclass
class SourceGeometry:
    """Cell-centred coordinates relative to the source centre, in voxels: ``rh`` horizontal distance
    to the axis, ``dx``/``dz`` horizontal offsets, ``y`` height above the floor, ``r`` 3-D distance to the
    centre (for a ball source)."""

    dx: torch.Tensor
    dz: torch.Tensor
    y: torch.Tensor
    rh: torch.Tensor
    r: torch.Tensor

    @classmethod
    def of(cls, shape: tuple[int, int, int], centre_vox: tuple[float, float, float]) -> "SourceGeometry":
        axes = [torch.arange(n, dtype=torch.float32) + 0.5 for n in shape]
        x, y, z = torch.meshgrid(*axes, indexing="ij")
        dx, dz = x - centre_vox[0], z - centre_vox[2]
        rh = torch.sqrt(dx * dx + dz * dz)
        return cls(dx, dz, y, rh, torch.sqrt(rh * rh + (y - centre_vox[1]) ** 2))


class FireSource:
    """The fire's (or smoke's) floor disc of radius ``radius_vox``, puffing at ``puffing_hz(D)``."""

    def __init__(self, sim: FluidSim, radius_vox: float, inflow_mps: float, prm: dict, smoke: bool,
                 gen: torch.Generator) -> None:
        nx, ny, nz = sim.shape
        self.geo = SourceGeometry.of(sim.shape, (nx / 2, 0.0, nz / 2))
        self.radius = radius_vox
        height = max(2.0, 0.04 * ny)
        self.disc = (torch.clamp(radius_vox - self.geo.rh + 0.5, 0.0, 1.0) * (self.geo.y < height).float())
        # the base's pinch ring: up to 1.5 radii out, up to one diameter high
        self.ring = (torch.clamp(1.5 * radius_vox - self.geo.rh, 0.0, 1.0)
                     * torch.clamp(1.0 - self.geo.y / (2 * radius_vox), 0.0, 1.0))
        diameter_m = 2 * radius_vox * sim.h
        hz = float(prm.get("puff_hz", 0.0)) or puffing_hz(diameter_m)
        self.hz = hz
        self.amplitude = float(prm.get("puff_amplitude", 0.6))
        self.inflow = inflow_mps
        self.smoke = smoke
        self.turbulence = float(prm["turbulence"]) * inflow_mps
        self.gen = gen
        self.phase = float(torch.rand((), generator=gen)) * 2 * math.pi
        self.pinch = float(prm.get("puff_pinch", 1.0))

    def emit(self, sim: FluidSim, dt: float) -> None:
        """Inject one step's fuel (or smoke), heat and inflow, with the puffing modulation."""
        # the phase advances at hz with a slow random drift (+-10% of a cycle's rate)
        drift = 1.0 + 0.1 * (2.0 * float(torch.rand((), generator=self.gen)) - 1.0)
        self.phase += 2 * math.pi * self.hz * dt * drift
        s = math.sin(self.phase)
        swell = 1.0 + self.amplitude * s  # fuel flow and inflow: swell (s > 0) and neck (s < 0)
        nz = noise(self.gen, sim.shape).to(sim.device)
        flick = self.disc.to(sim.device) * (0.3 + 1.2 * nz ** 2)
        heat = torch.clamp(sim.temperature, 0.0, 1.0)
        gx = noise(self.gen, sim.shape, 3).to(sim.device) - 0.5
        gz = noise(self.gen, sim.shape, 3).to(sim.device) - 0.5
        sim.u = sim.u + cell_to_face(self.turbulence * heat * gx, 0)
        sim.w = sim.w + cell_to_face(self.turbulence * heat * gz, 2)
        # the source cells are set (not topped up), so the fuel flow really swings with the puffing
        disc = self.disc.to(sim.device)
        keep = 1.0 - disc
        sw = max(swell, 0.05)
        if self.smoke:
            sim.density = sim.density * keep + 0.5 * flick * sw
            sim.temperature = sim.temperature * keep + 0.6 * flick * sw
        else:
            sim.fuel = sim.fuel * keep + 0.8 * flick * sw
            sim.temperature = sim.temperature * keep + 0.45 * flick * sw
        target = cell_to_face(flick * self.inflow * max(swell, 0.1), 1)
        sim.v = torch.where(target > sim.v, target, sim.v)
        if self.pinch > 0 and s < 0:
            # necking: air drawn in towards the axis at the base (the shed vortex's inflow)
            k = -s * self.pinch * self.inflow * dt * 20.0
            ring = self.ring.to(sim.device)
            inv = 1.0 / (self.geo.rh.to(sim.device) + 1.0)
            sim.u = sim.u - cell_to_face(k * ring * self.geo.dx.to(sim.device) * inv, 0)
            sim.w = sim.w - cell_to_face(k * ring * self.geo.dz.to(sim.device) * inv, 2)


class ExplosionSource:
    """A fireball at ``centre_vox`` growing to ``radius_vox`` over ``growth_s`` as R ~ t^0.4."""

    def __init__(self, sim: FluidSim, centre_vox: tuple[float, float, float], radius_vox: float, prm: dict,
                 gen: torch.Generator, dt: float) -> None:
        self.geo = SourceGeometry.of(sim.shape, centre_vox)
        self.radius = radius_vox
        self.growth_s = max(float(prm["growth_s"]), 1e-3)
        self.gen = gen
        self.lumps = noise(gen, sim.shape, 3).to(sim.device)  # fixed lumpy structure of the burst
        self.t0 = dt
        self.started = False

    def radius_at(self, t_s: float) -> float:
        """Model fireball radius (voxels) at ``t_s`` seconds after ignition."""
        return self.radius * min(1.0, max(t_s, self.t0) / self.growth_s) ** BLAST_EXPONENT

    def emit(self, sim: FluidSim, dt: float) -> None:
        """Seed the core on the first step; set this step's expansion (the blast's divergence)."""
        t = sim.time_s + dt  # the time at the end of this step
        r = self.geo.r.to(sim.device)
        if not self.started:
            self.started = True
            r0 = self.radius_at(t)
            x = torch.clamp(1.0 - (r / r0) ** 2, 0.0, 1.0)
            core = torch.sqrt(x) * (0.7 + 0.6 * self.lumps)
            sim.temperature = torch.maximum(sim.temperature, 1.3 * core)  # hot centre, cooler rim
            sim.fuel = torch.maximum(sim.fuel, 0.8 * core)
            sim.density = torch.maximum(sim.density, 0.15 * core)
        rate = BLAST_EXPONENT * 3.0 / max(t, self.t0)  # 3 R'/R
        if t > self.growth_s:
            rate *= math.exp(-(t - self.growth_s) / (0.3 * self.growth_s))
        inside = torch.clamp(self.radius_at(t) - r + 0.5, 0.0, 1.0)
        sim.expansion = inside * rate * (0.6 + 0.8 * self.lumps)  # lumpy: turbulent detail in the rim
        # some swirl where it is hot, for the roiling surface
        heat = torch.clamp(sim.temperature, 0.0, 1.0)
        gx = noise(self.gen, sim.shape, 3).to(sim.device) - 0.5
        gz = noise(self.gen, sim.shape, 3).to(sim.device) - 0.5
        speed = self.radius * sim.h / self.growth_s
        sim.u = sim.u + cell_to_face(speed * heat * gx, 0)
        sim.w = sim.w + cell_to_face(speed * heat * gz, 2)
