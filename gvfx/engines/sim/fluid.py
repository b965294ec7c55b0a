"""A small voxel smoke/fire solver in torch: staggered (MAC) velocity, MacCormack advection (a
semi-Lagrangian step corrected by its own back-and-forth error, limited to the departure cell's range),
buoyancy, vorticity confinement, combustion and a matrix-free pressure projection (``pressure.py``:
conjugate gradient preconditioned by a multigrid V-cycle on the 7-point stencil).

Grid layout: tensors are indexed ``[x, y, z]`` with ``y`` the world up axis; cell ``(i, j, k)`` spans
``[i, i+1] x [j, j+1] x [k, k+1]`` in voxel units from the box's minimum corner. Velocity is staggered:
``u`` (nx+1, ny, nz) on x-faces, ``v`` (nx, ny+1, nz) on y-faces, ``w`` (nx, ny, nz+1) on z-faces, in
metres per second. Scalars (density, temperature, fuel) are cell-centred. Boundaries: the floor
(y = 0) is a closed wall (zero normal velocity, Neumann pressure); the top and sides are open
(pressure 0 just outside).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gvfx.engines.sim.pressure import (BaselineMultigrid, PressureSolver, laplacian, solve_pressure,
                                       solve_pressure_baseline)

__all__ = ["FluidParams", "FluidSim", "divergence", "laplacian", "solve_pressure", "torch_threads"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FluidParams:
    """Solver settings (SI units; temperature and densities are unitless 0..~1 fields)."""

    buoyancy: float = 4.0  # m/s^2 of lift per unit temperature
    weight: float = 0.5  # m/s^2 of sink per unit smoke density
    vorticity: float = 2.0  # confinement strength (dimensionless, times the voxel size)
    density_dissipation: float = 0.15  # 1/s
    cooling: float = 1.2  # 1/s, temperature decay
    wind_mps: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wind_drag: float = 0.6  # 1/s, how fast the flow relaxes towards the wind
    burn_rate: float = 6.0  # 1/s, fuel consumption where hot enough
    ignition: float = 0.15  # temperature above which fuel burns
    burn_heat: float = 1.0  # temperature added per unit fuel burnt
    burn_soot: float = 0.35  # smoke density added per unit fuel burnt
    cg_tolerance: float = 1e-5  # relative residual of the pressure solve
    cg_max_iter: int = 60
    maccormack: bool = True  # second-order advection of the scalars (wisps); False = semi-Lagrangian
    #: MacCormack for the velocity too: off by default, with strong confinement and source gusts its
    #: lower damping let horizontal velocity grow without bound (13 m/s in a 0.5 m fire)
    maccormack_velocity: bool = False


#: Grids with fewer cells than this run single-threaded: at these sizes each op takes microseconds and
#: OpenMP's thread hand-off dominates (2 threads were ~10x slower than 1 on a loaded 2-core machine).
SMALL_GRID_CELLS = 1 << 18


@contextlib.contextmanager
def torch_threads(cells: int) -> Iterator[None]:
    """Run the block single-threaded when a grid of ``cells`` is small; restore the thread count after."""
    before = torch.get_num_threads()
    if cells < SMALL_GRID_CELLS and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _pad_axis(t: torch.Tensor, axis: int) -> torch.Tensor:
    """Replicate one layer at each end of ``axis``."""
    first = t.narrow(axis, 0, 1)
    last = t.narrow(axis, t.shape[axis] - 1, 1)
    return torch.cat([first, t, last], dim=axis)


def face_to_cell(f: torch.Tensor, axis: int) -> torch.Tensor:
    """Average a face-staggered component onto cell centres."""
    n = f.shape[axis] - 1
    return 0.5 * (f.narrow(axis, 0, n) + f.narrow(axis, 1, n))


def cell_to_face(c: torch.Tensor, axis: int) -> torch.Tensor:
    """Average a cell-centred field onto the faces normal to ``axis`` (edge-replicated at the ends)."""
    p = _pad_axis(c, axis)
    n = c.shape[axis] + 1
    return 0.5 * (p.narrow(axis, 0, n) + p.narrow(axis, 1, n))


def divergence(u: torch.Tensor, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Cell-centred discrete divergence in voxel units (sum of outgoing face velocities)."""
    return (u[1:] - u[:-1]) + (v[:, 1:] - v[:, :-1]) + (w[:, :, 1:] - w[:, :, :-1])


class FluidSim:
    """The solver state on a ``(nx, ny, nz)`` grid of ``voxel_m``-metre cells.

    Sources are written straight into the fields (``density``, ``temperature``, ``fuel``, ``v``,
    ``expansion``) between calls to ``step(dt)``; fields are torch float32 on ``device``. Deterministic
    on CPU: no atomics, no random numbers inside (sources bring their own seeded noise).
    """

    def __init__(self, shape: tuple[int, int, int], voxel_m: float, params: FluidParams = FluidParams(),
                 device: str | torch.device = "cpu", baseline_solver: bool = False) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.h = float(voxel_m)
        self.params = params
        self.device = torch.device(device)
        nx, ny, nz = self.shape
        kw = dict(dtype=torch.float32, device=self.device)
        self.u = torch.zeros((nx + 1, ny, nz), **kw)
        self.v = torch.zeros((nx, ny + 1, nz), **kw)
        self.w = torch.zeros((nx, ny, nz + 1), **kw)
        self.density = torch.zeros(self.shape, **kw)
        self.temperature = torch.zeros(self.shape, **kw)
        self.fuel = torch.zeros(self.shape, **kw)
        #: target divergence (1/s) for the next projection: >0 expands (explosions)
        self.expansion = torch.zeros(self.shape, **kw)
        #: the pressure solve: the in-place warm-started one, or the original (benchmark baseline)
        self.baseline_solver = bool(baseline_solver)
        if self.baseline_solver:
            self.mg = BaselineMultigrid(self.shape, self.device)
        else:
            self.solver = PressureSolver(self.shape, self.device)
        self.last_cg_iterations = 0
        self.time_s = 0.0
        idx = [torch.arange(n, **kw) for n in (nx + 1, ny + 1, nz + 1)]
        self._axes = idx  # integer coordinates, sliced per grid
        self._coord_cache: dict = {}

    # ---- sampling -------------------------------------------------------------------------------
    def _coords(self, shape: tuple[int, int, int], offset: tuple[float, float, float]) -> torch.Tensor:
        """(X, Y, Z, 3) voxel-space positions of the samples of a grid with ``offset``."""
        key = (shape, offset)
        if key not in self._coord_cache:
            xs = [self._axes[a][: shape[a]] + offset[a] for a in range(3)]
            gx, gy, gz = torch.meshgrid(*xs, indexing="ij")
            self._coord_cache[key] = torch.stack([gx, gy, gz], dim=-1)
        return self._coord_cache[key]

    @staticmethod
    def sample(field: torch.Tensor, offset: tuple[float, float, float], pos: torch.Tensor) -> torch.Tensor:
        """Trilinear sample of ``field`` (C, X, Y, Z) whose sample (i, j, k) sits at voxel position
        (i, j, k) + offset, at positions ``pos`` (..., 3) in voxel units; clamped at the borders.
        Returns (C, ...)."""
        c, nx, ny, nz = field.shape
        size = torch.tensor([nx, ny, nz], dtype=pos.dtype, device=pos.device)
        off = torch.tensor(offset, dtype=pos.dtype, device=pos.device)
        g = 2.0 * (pos - off) / torch.clamp(size - 1, min=1) - 1.0
        g = g.flip(-1).reshape(1, -1, 1, 1, 3)  # grid_sample wants (z, y, x) order for (D=x, H=y, W=z)
        out = F.grid_sample(field[None], g, mode="bilinear", padding_mode="border", align_corners=True)
        return out.reshape(c, *pos.shape[:-1])

    def velocity_at(self, pos: torch.Tensor) -> torch.Tensor:
        """(..., 3) velocity in m/s at voxel positions ``pos`` (..., 3)."""
        u = self.sample(self.u[None], (0.0, 0.5, 0.5), pos)[0]
        v = self.sample(self.v[None], (0.5, 0.0, 0.5), pos)[0]
        w = self.sample(self.w[None], (0.5, 0.5, 0.0), pos)[0]
        return torch.stack([u, v, w], dim=-1)

    def _face_velocity(self, axis: int) -> torch.Tensor:
        """(..., 3) full velocity at the faces normal to ``axis`` (other components averaged there)."""
        comps = [self.u, self.v, self.w]
        out = []
        for a in range(3):
            out.append(comps[a] if a == axis else cell_to_face(face_to_cell(comps[a], a), axis))
        return torch.stack(out, dim=-1)

    def cell_velocity(self) -> torch.Tensor:
        """(nx, ny, nz, 3) cell-centred velocity in m/s."""
        return torch.stack([face_to_cell(self.u, 0), face_to_cell(self.v, 1), face_to_cell(self.w, 2)], -1)

    # ---- steps ----------------------------------------------------------------------------------
    def _advected(self, field: torch.Tensor, offset: tuple[float, float, float], coords: torch.Tensor,
                  step: torch.Tensor, mac: bool) -> torch.Tensor:
        """``field`` (C, X, Y, Z) carried along ``step`` (X, Y, Z, 3) voxels of motion: semi-Lagrangian,
        plus MacCormack's correction ``0.5 * (field - back-advected result)`` clamped to the range of
        the 3x3x3 neighbourhood at the departure point (keeps it monotone, no new extrema)."""
        pos = coords - step
        fwd = self.sample(field, offset, pos)
        if not mac:
            return fwd
        back = self.sample(fwd, offset, coords + step)
        out = fwd + 0.5 * (field - back)
        hi = F.max_pool3d(field[None], 3, stride=1, padding=1)[0]
        lo = -F.max_pool3d(-field[None], 3, stride=1, padding=1)[0]
        return torch.minimum(torch.maximum(out, self.sample(lo, offset, pos)), self.sample(hi, offset, pos))

    def advect(self, dt: float) -> None:
        """Advection of velocity and scalars by the current velocity (trilinear backtrace; MacCormack
        for the scalars unless ``params.maccormack`` is off, for the velocity if
        ``params.maccormack_velocity``)."""
        scale = dt / self.h
        offs = [(0.0, 0.5, 0.5), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0)]
        comps = [self.u, self.v, self.w]
        new = []
        for a in range(3):
            coords = self._coords(tuple(comps[a].shape), offs[a])
            new.append(self._advected(comps[a][None], offs[a], coords, scale * self._face_velocity(a),
                                      self.params.maccormack_velocity)[0])
        coords = self._coords(self.shape, (0.5, 0.5, 0.5))
        scalars = torch.stack([self.density, self.temperature, self.fuel])
        s = self._advected(scalars, (0.5, 0.5, 0.5), coords, scale * self.cell_velocity(), self.params.maccormack)
        self.u, self.v, self.w = new
        self.density, self.temperature, self.fuel = s[0], s[1], s[2]

    def add_forces(self, dt: float) -> None:
        """Buoyancy (heat lifts, smoke sinks), wind drag, vorticity confinement."""
        p = self.params
        lift = p.buoyancy * self.temperature - p.weight * self.density
        self.v = self.v + dt * cell_to_face(lift, 1)
        if p.wind_drag > 0 and any(p.wind_mps):
            k = 1.0 - float(torch.exp(torch.tensor(-p.wind_drag * dt)))
            self.u = self.u + k * (p.wind_mps[0] - self.u)
            self.v = self.v + k * (p.wind_mps[1] - self.v)
            self.w = self.w + k * (p.wind_mps[2] - self.w)
        if p.vorticity > 0:
            f = self._confinement()
            for a, name in enumerate("uvw"):
                setattr(self, name, getattr(self, name) + dt * cell_to_face(f[..., a], a))

    def _confinement(self) -> torch.Tensor:
        """(nx, ny, nz, 3) vorticity-confinement force eps * h * (N x omega), in m/s^2."""
        vel = self.cell_velocity()
        g = [torch.gradient(vel[..., c], spacing=self.h, edge_order=1) for c in range(3)]  # g[c][axis]
        om = torch.stack([g[2][1] - g[1][2], g[0][2] - g[2][0], g[1][0] - g[0][1]], dim=-1)
        mag = torch.linalg.vector_norm(om, dim=-1)
        n = torch.stack(torch.gradient(mag, spacing=self.h, edge_order=1), dim=-1)
        n = n / (torch.linalg.vector_norm(n, dim=-1, keepdim=True) + 1e-6)
        return self.params.vorticity * self.h * torch.linalg.cross(n, om, dim=-1)

    def combust(self, dt: float) -> None:
        """Fuel above the ignition temperature burns into heat and soot; heat cools, smoke thins."""
        p = self.params
        hot = torch.clamp((self.temperature - p.ignition) / max(p.ignition, 1e-3), 0.0, 1.0)
        burnt = self.fuel * (1.0 - torch.exp(torch.tensor(-p.burn_rate * dt))) * hot
        self.fuel = self.fuel - burnt
        self.temperature = self.temperature + p.burn_heat * burnt
        self.density = self.density + p.burn_soot * burnt
        self.temperature = self.temperature * float(torch.exp(torch.tensor(-p.cooling * dt)))
        self.density = self.density * float(torch.exp(torch.tensor(-p.density_dissipation * dt)))

    def project(self, dt: float) -> int:
        """Make the velocity divergence-free (or equal to ``expansion``): solve for pressure, subtract
        its gradient. Returns the CG iteration count."""
        # voxel-unit divergence (m/s summed over faces); the target is ``expansion`` in 1/s
        div = divergence(self.u, self.v, self.w) - self.expansion * self.h
        if self.baseline_solver:
            p, it = solve_pressure_baseline(div, self.mg, self.params.cg_tolerance, self.params.cg_max_iter)
        else:
            p, it = self.solver.solve(div, self.params.cg_tolerance, self.params.cg_max_iter)
        q = F.pad(p[None, None], (1, 1, 1, 1, 1, 1))[0, 0]
        q[1:-1, 0, 1:-1] = p[:, 0, :]
        self.u = self.u - (q[1:, 1:-1, 1:-1] - q[:-1, 1:-1, 1:-1])
        self.v = self.v - (q[1:-1, 1:, 1:-1] - q[1:-1, :-1, 1:-1])
        self.w = self.w - (q[1:-1, 1:-1, 1:] - q[1:-1, 1:-1, :-1])
        self.v[:, 0, :] = 0.0  # closed floor
        self.last_cg_iterations = it
        return it

    def step(self, dt: float) -> None:
        """One time step of ``dt`` seconds: combust, forces, project, advect."""
        self.combust(dt)
        self.add_forces(dt)
        self.project(dt)
        self.advect(dt)
        self.density.clamp_(min=0.0)
        self.fuel.clamp_(min=0.0)
        self.temperature.clamp_(min=0.0)
        self.time_s += dt

    def state(self) -> dict[str, torch.Tensor]:
        """All state tensors by name (for caching and tests)."""
        return {"u": self.u, "v": self.v, "w": self.w, "density": self.density,
                "temperature": self.temperature, "fuel": self.fuel}
