"""Tests for the voxel fluid solver: projection, buoyancy, determinism, combustion."""

from __future__ import annotations

import torch

from gvfx.engines.sim.fluid import FluidParams, FluidSim, divergence, laplacian, solve_pressure


def _random_velocity(sim: FluidSim, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    sim.u = torch.randn(sim.u.shape, generator=g)
    sim.v = torch.randn(sim.v.shape, generator=g)
    sim.w = torch.randn(sim.w.shape, generator=g)
    sim.v[:, 0, :] = 0.0


def test_projection_removes_divergence():
    sim = FluidSim((16, 24, 16), voxel_m=0.05)
    _random_velocity(sim, 0)
    before = divergence(sim.u, sim.v, sim.w).abs().max().item()
    iters = sim.project(1 / 48)
    after = divergence(sim.u, sim.v, sim.w).abs().max().item()
    assert before > 1.0
    assert after < 1e-3
    assert before / after > 100
    assert 0 < iters < 30  # multigrid-preconditioned CG converges in few iterations
    assert torch.all(sim.v[:, 0, :] == 0)  # closed floor


def test_pressure_solver_residual():
    g = torch.Generator().manual_seed(3)
    b = torch.randn((16, 16, 16), generator=g)
    from gvfx.engines.sim.fluid import _Multigrid
    p, _ = solve_pressure(b, _Multigrid(b.shape, torch.device("cpu")), tol=1e-6, max_iter=100)
    rel = (torch.linalg.vector_norm(laplacian(p) - b) / torch.linalg.vector_norm(b)).item()
    assert rel < 1e-5


def test_expansion_is_kept_by_projection():
    sim = FluidSim((16, 16, 16), voxel_m=0.1)
    sim.expansion[6:10, 6:10, 6:10] = 5.0
    sim.project(0.02)
    div = divergence(sim.u, sim.v, sim.w) / sim.h  # 1/s
    assert abs(div[8, 8, 8].item() - 5.0) < 1e-2
    assert abs(div[2, 12, 2].item()) < 1e-2


def _smoke_blob(seed: int = 0) -> FluidSim:
    sim = FluidSim((16, 24, 16), voxel_m=0.05, params=FluidParams(vorticity=1.0))
    sim.density[6:10, 2:6, 6:10] = 1.0
    sim.temperature[6:10, 2:6, 6:10] = 1.0
    _random_velocity(sim, seed)
    sim.u, sim.v, sim.w = 0.01 * sim.u, 0.01 * sim.v, 0.01 * sim.w
    return sim


def _centroid_y(sim: FluidSim) -> float:
    y = torch.arange(sim.shape[1], dtype=torch.float32)[None, :, None] + 0.5
    return (sim.density * y).sum().item() / sim.density.sum().item()


def test_buoyancy_makes_smoke_rise():
    sim = _smoke_blob()
    y0 = _centroid_y(sim)
    for _ in range(10):
        sim.step(1 / 48)
    assert _centroid_y(sim) > y0 + 0.5  # rose by more than half a voxel in 0.2 s
    assert sim.v.mean().item() > 0


def test_cold_heavy_smoke_sinks():
    sim = FluidSim((16, 24, 16), voxel_m=0.05, params=FluidParams(weight=4.0, vorticity=0.0))
    sim.density[6:10, 12:16, 6:10] = 1.0
    y0 = _centroid_y(sim)
    for _ in range(10):
        sim.step(1 / 48)
    assert _centroid_y(sim) < y0 - 0.5


def test_same_seed_same_state_bitwise():
    a, b = _smoke_blob(7), _smoke_blob(7)
    for _ in range(4):
        a.step(1 / 48)
        b.step(1 / 48)
    for k, t in a.state().items():
        assert torch.equal(t, b.state()[k]), k
    c = _smoke_blob(8)
    for _ in range(4):
        c.step(1 / 48)
    assert not torch.equal(a.u, c.u)


def test_fuel_burns_into_heat_and_soot():
    sim = FluidSim((16, 16, 16), voxel_m=0.05, params=FluidParams(cooling=0.0, density_dissipation=0.0))
    sim.fuel[4:8, 4:8, 4:8] = 1.0
    sim.fuel[10:14, 4:8, 10:14] = 1.0
    sim.temperature[4:8, 4:8, 4:8] = 0.5  # ignited
    fuel0 = sim.fuel.sum().item()
    sim.combust(0.1)
    burnt_hot = 1.0 - sim.fuel[5, 5, 5].item()
    assert burnt_hot > 0.3
    assert sim.fuel[11, 5, 11].item() == 1.0  # cold fuel does not burn
    assert sim.temperature[5, 5, 5].item() > 0.5 + 0.3
    assert sim.density[5, 5, 5].item() > 0
    assert sim.fuel.sum().item() < fuel0
