"""The pressure Poisson solve of the voxel fluid: ``laplacian(p) = b`` on the 7-point stencil with
p = 0 outside the top/sides and a mirrored (Neumann) floor, by conjugate gradient preconditioned with
a multigrid V-cycle.

Two implementations of the same numerics: ``solve_pressure`` (the fast one: every buffer allocated
once per grid and reused in place, warm start from the previous step's pressure) and
``solve_pressure_baseline`` (the original, which allocated a fresh tensor per operation; kept as the
baseline of ``benchmarks/sim_bench.py`` and as the reference in the tests). On CPU, tensors of a few
MB come from fresh ``mmap`` pages every time, so the baseline spent most of its time page-faulting.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Jacobi damping weight of the smoother.
_OMEGA = 0.8


def laplacian(p: torch.Tensor) -> torch.Tensor:
    """7-point Laplacian (voxel units) with p = 0 outside the top/sides and a mirrored floor
    (Neumann: the floor's ghost equals the first layer, so its -1 cancels one of the -6)."""
    out = -6.0 * p
    out[:, 0, :] += p[:, 0, :]
    out[1:] += p[:-1]
    out[:-1] += p[1:]
    out[:, 1:] += p[:, :-1]
    out[:, :-1] += p[:, 1:]
    out[:, :, 1:] += p[:, :, :-1]
    out[:, :, :-1] += p[:, :, 1:]
    return out


def laplacian_into(p: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``laplacian(p)`` written into ``out`` (same shape) without allocating."""
    torch.mul(p, -6.0, out=out)
    out[:, 0, :].add_(p[:, 0, :])
    out[1:].add_(p[:-1])
    out[:-1].add_(p[1:])
    out[:, 1:].add_(p[:, :-1])
    out[:, :-1].add_(p[:, 1:])
    out[:, :, 1:].add_(p[:, :, :-1])
    out[:, :, :-1].add_(p[:, :, 1:])
    return out


def _diag(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    d = torch.full(shape, -6.0, device=device)
    d[:, 0, :] += 1.0
    return d


def _levels(shape: tuple[int, int, int], min_size: int) -> list[tuple[int, int, int]]:
    shapes = [tuple(int(s) for s in shape)]
    while all(s % 2 == 0 and s // 2 >= min_size for s in shapes[-1]) and len(shapes) < 8:
        shapes.append(tuple(s // 2 for s in shapes[-1]))
    return shapes


class Multigrid:
    """A cell-centred multigrid V-cycle for the pressure Laplacian, used as a symmetric CG
    preconditioner: damped Jacobi (2 pre, 2 post sweeps; 16 on the coarsest level), 2x2x2 averaging
    restriction, constant prolongation. All level buffers are allocated here, once."""

    def __init__(self, shape: tuple[int, int, int], device: torch.device, min_size: int = 4) -> None:
        self.shapes = _levels(shape, min_size)
        kw = dict(dtype=torch.float32, device=device)
        self.x = [torch.zeros(s, **kw) for s in self.shapes]  # solution per level
        self.b = [torch.zeros(s, **kw) for s in self.shapes]  # right-hand side per level (>= 1)
        self.t = [torch.zeros(s, **kw) for s in self.shapes]  # scratch per level
        # restriction halves x, then y, then z (pairwise adds: strided 6-D reductions are 30x slower);
        # prolongation doubles z into ``zx`` then broadcasts over x and y pairs
        self.rx = [torch.zeros((s[0] // 2, s[1], s[2]), **kw) for s in self.shapes[:-1]]
        self.ry = [torch.zeros((s[0] // 2, s[1] // 2, s[2]), **kw) for s in self.shapes[:-1]]

    def _sweep(self, level: int, b: torch.Tensor) -> None:
        """One damped-Jacobi sweep in place: x += omega * (b - L x) / diag."""
        x, t = self.x[level], self.t[level]
        laplacian_into(x, t)
        torch.sub(b, t, out=t)
        t.mul_(-_OMEGA / 6.0)
        t[:, 0, :].mul_(6.0 / 5.0)  # the floor layer's diagonal is -5
        x.add_(t)

    def _first_sweep(self, level: int, b: torch.Tensor) -> None:
        """The first sweep from x = 0: x = omega * b / diag."""
        x = self.x[level]
        torch.mul(b, -_OMEGA / 6.0, out=x)
        x[:, 0, :].mul_(6.0 / 5.0)

    def vcycle(self, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Apply the V-cycle to ``b`` (finest shape); the result is written to ``out``."""
        last = len(self.shapes) - 1
        for level in range(last + 1):
            rhs = b if level == 0 else self.b[level]
            sweeps = 16 if level == last else 2
            self._first_sweep(level, rhs)
            for _ in range(sweeps - 1):
                self._sweep(level, rhs)
            if level == last:
                break
            # restriction of the residual: mean of 8 children, x4 for the coarser stencil's h^2
            t = self.t[level]
            laplacian_into(self.x[level], t)
            torch.sub(rhs, t, out=t)
            rx, ry, rc = self.rx[level], self.ry[level], self.b[level + 1]
            torch.add(t[0::2], t[1::2], out=rx)
            torch.add(rx[:, 0::2], rx[:, 1::2], out=ry)
            torch.add(ry[:, :, 0::2], ry[:, :, 1::2], out=rc)
            rc.mul_(0.5)  # 4 / 8
        for level in range(last - 1, -1, -1):
            nx, ny, nz = self.shapes[level + 1]
            fz = self.ry[level]  # (nx, ny, 2 nz): the coarse correction doubled along z
            fz.view(nx, ny, nz, 2).copy_(self.x[level + 1][..., None].expand(nx, ny, nz, 2))
            self.x[level].view(nx, 2, ny, 2, 2 * nz).add_(fz.view(nx, 1, ny, 1, 2 * nz))
            rhs = b if level == 0 else self.b[level]
            for _ in range(2):
                self._sweep(level, rhs)
        out.copy_(self.x[0])
        return out


class PressureSolver:
    """Multigrid-preconditioned CG for one grid shape, with its buffers and the last solution (the
    warm start of the next solve: pressure changes little from one step to the next)."""

    def __init__(self, shape: tuple[int, int, int], device: torch.device, warm_start: bool = True) -> None:
        self.mg = Multigrid(shape, device)
        kw = dict(dtype=torch.float32, device=device)
        self.p = torch.zeros(self.mg.shapes[0], **kw)
        self.r, self.z, self.d, self.ad = (torch.zeros(self.mg.shapes[0], **kw) for _ in range(4))
        self.warm_start = warm_start

    def solve(self, b: torch.Tensor, tol: float = 1e-5, max_iter: int = 60) -> tuple[torch.Tensor, int]:
        """Solve ``laplacian(p) = b``; returns (p, iterations). ``p`` is the solver's own buffer
        (valid until the next solve): copy it to keep it."""
        x, r, z, d, ad = self.p, self.r, self.z, self.d, self.ad
        b_norm = float(torch.linalg.vector_norm(b))
        if b_norm == 0.0:
            x.zero_()
            return x, 0
        if self.warm_start:
            laplacian_into(x, r)
            torch.sub(b, r, out=r)
            if float(torch.linalg.vector_norm(r)) <= tol * b_norm:
                return x, 0
        else:
            x.zero_()
            r.copy_(b)
        self.mg.vcycle(r, z)
        d.copy_(z)
        rz = float(torch.dot(r.view(-1), z.view(-1)))
        it = 0
        for it in range(1, max_iter + 1):
            laplacian_into(d, ad)
            alpha = rz / float(torch.dot(d.view(-1), ad.view(-1)))
            x.add_(d, alpha=alpha)
            r.sub_(ad, alpha=alpha)
            if float(torch.linalg.vector_norm(r)) <= tol * b_norm:
                break
            self.mg.vcycle(r, z)
            rz_new = float(torch.dot(r.view(-1), z.view(-1)))
            d.mul_(rz_new / rz).add_(z)
            rz = rz_new
        return x, it


def solve_pressure(b: torch.Tensor, solver: PressureSolver | None = None, tol: float = 1e-5,
                   max_iter: int = 60) -> tuple[torch.Tensor, int]:
    """Solve ``laplacian(p) = b`` with ``solver`` (a fresh cold-start one if None); returns a copy
    of p and the CG iteration count."""
    solver = solver or PressureSolver(tuple(b.shape), b.device, warm_start=False)
    p, it = solver.solve(b, tol, max_iter)
    return p.clone(), it


# ---- the baseline: the original allocating implementation ------------------------------------------


class BaselineMultigrid:
    """The original V-cycle (same numerics as ``Multigrid``, a new tensor per operation)."""

    def __init__(self, shape: tuple[int, int, int], device: torch.device, min_size: int = 4) -> None:
        self.shapes = _levels(shape, min_size)
        self.inv_diags = [_OMEGA / _diag(s, device) for s in self.shapes]

    def _smooth(self, x: torch.Tensor, b: torch.Tensor, level: int, sweeps: int) -> torch.Tensor:
        inv_d = self.inv_diags[level]
        for _ in range(sweeps):
            x = x + (b - laplacian(x)) * inv_d
        return x

    def vcycle(self, b: torch.Tensor, level: int = 0) -> torch.Tensor:
        if level == len(self.shapes) - 1:
            return self._smooth(torch.zeros_like(b), b, level, 16)
        x = self._smooth(torch.zeros_like(b), b, level, 2)
        r = b - laplacian(x)
        rc = F.avg_pool3d(r[None, None], 2)[0, 0] * 4.0
        ec = self.vcycle(rc, level + 1)
        x = x + ec.repeat_interleave(2, 0).repeat_interleave(2, 1).repeat_interleave(2, 2)
        return self._smooth(x, b, level, 2)


def solve_pressure_baseline(b: torch.Tensor, mg: BaselineMultigrid, tol: float = 1e-5,
                            max_iter: int = 60) -> tuple[torch.Tensor, int]:
    """The original multigrid-preconditioned CG from zero; returns (p, iterations)."""
    x = torch.zeros_like(b)
    r = b.clone()
    b_norm = float(torch.linalg.vector_norm(b))
    if b_norm == 0.0:
        return x, 0
    z = mg.vcycle(r)
    d = z.clone()
    rz = torch.sum(r * z)
    it = 0
    for it in range(1, max_iter + 1):
        ad = laplacian(d)
        alpha = rz / torch.sum(d * ad)
        x = x + alpha * d
        r = r - alpha * ad
        if float(torch.linalg.vector_norm(r)) <= tol * b_norm:
            break
        z = mg.vcycle(r)
        rz_new = torch.sum(r * z)
        d = z + (rz_new / rz) * d
        rz = rz_new
    return x, it
