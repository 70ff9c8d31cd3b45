"""The PandA reference solver (``Model.decompose`` of james-oldfield/PandA) in PyTorch, for the
benchmark; written here from the formulas in ``shared/reference/panda_eis.md`` §1.

Per step on a batch ``z [B, C, S]`` (the reference: B = 1, a fresh sample every step):
the loss ``mean_b ‖Z_b − A AᵀZ_b P Pᵀ‖²`` is recorded (the reference computes it every step
with its default ``verbose=True``), then ``P ← max(P − lr·∇_P, 0)`` and ``A ← A − lr·∇_A`` at the
new ``P``, with the hand-written gradients summed over the batch.

``grads="literal"`` evaluates the gradient expressions left to right as they are written
(``Zᵀ A Aᵀ Z P`` ...: ``S·C·R_C`` and ``S·C·S`` products, ~1.5 G multiply-adds per sample at
16x16x512 with R_C = 512), which is the reference's cost. ``grads="reassociated"`` computes the
same gradients through ``Y = Z P`` and ``K = Aᵀ Y`` (~10 M multiply-adds): the same numbers,
two orders of magnitude cheaper, so that the comparison also shows what is JAX and what is algebra.
"""

from __future__ import annotations

import torch


def loss(z: torch.Tensor, a: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Per-sample ``‖Z_b − A (Aᵀ Z_b P) Pᵀ‖²_F``: z [B, C, S] -> [B]."""
    core = a.T @ z @ p
    rec = a @ core @ p.T
    return ((z - rec) ** 2).sum(dim=(1, 2))


def grad_p_literal(z, a, p):
    """∇_P = Σ −4·ZᵀAAᵀZP + 2·(PPᵀZᵀAAᵀAAᵀZP + ZᵀAAᵀAAᵀZPPᵀP), evaluated left to right."""
    zt = z.transpose(1, 2)
    g = -4 * (zt @ a @ a.T @ z @ p) + 2 * (
        p @ p.T @ zt @ a @ a.T @ a @ a.T @ z @ p + zt @ a @ a.T @ a @ a.T @ z @ p @ p.T @ p
    )
    return g.sum(0)


def grad_a_literal(z, a, p):
    """∇_A = Σ −4·ZPPᵀZᵀA + 2·(AAᵀZPPᵀPPᵀZᵀA + ZPPᵀPPᵀZᵀAAᵀA), left to right."""
    zt = z.transpose(1, 2)
    g = -4 * (z @ p @ p.T @ zt @ a) + 2 * (
        a @ a.T @ z @ p @ p.T @ p @ p.T @ zt @ a + z @ p @ p.T @ p @ p.T @ zt @ a @ a.T @ a
    )
    return g.sum(0)


def grad_p_fast(z, a, p):
    """∇_P through Y = ZP, W = A AᵀY, V = A AᵀW: Σ Zᵀ(−4W + 2V·PᵀP) + 2P·Σ YᵀV."""
    y = z @ p  # [B, C, R_S]
    w = a @ (a.T @ y)
    v = a @ (a.T @ w)
    gp = p.T @ p
    zt = z.transpose(1, 2)
    return (zt @ (-4 * w + 2 * v @ gp)).sum(0) + 2 * p @ (y.transpose(1, 2) @ v).sum(0)


def grad_a_fast(z, a, p):
    """∇_A through Y = ZP, K = AᵀY, W = AK: Σ −4·YKᵀ + 2·W·PᵀP·Kᵀ + 2·Y·PᵀP·(WᵀA)."""
    y = z @ p
    k = a.T @ y  # [B, R_C, R_S]
    w = a @ k  # [B, C, R_S]
    gp = p.T @ p
    kt = k.transpose(1, 2)
    g = -4 * y @ kt + 2 * (w @ gp) @ kt + 2 * (y @ gp) @ (w.transpose(1, 2) @ a)
    return g.sum(0)


def loss_fast(z, a, p):
    """loss() without the [B, C, S] reconstruction: ‖Z‖² − 2‖AᵀZP‖² + ⟨PᵀP, (AK)ᵀ(AK)⟩."""
    y = z @ p
    k = a.T @ y
    w = a @ k
    return (
        (z**2).sum(dim=(1, 2)) - 2 * (k**2).sum(dim=(1, 2)) + ((w @ (p.T @ p)) * w).sum(dim=(1, 2))
    )


@torch.no_grad()
def decompose(batches, a0, p0, lr: float, steps: int, grads: str = "literal"):
    """The reference loop: ``batches(t) -> z [B, C, S]``. -> (A, P, losses [steps])."""
    if grads == "literal":
        gp_fn, ga_fn, loss_fn = grad_p_literal, grad_a_literal, loss
    elif grads == "reassociated":
        gp_fn, ga_fn, loss_fn = grad_p_fast, grad_a_fast, loss_fast
    else:
        raise ValueError(f"grads must be 'literal' or 'reassociated', got {grads!r}")
    a, p = a0.clone(), torch.clamp(p0.clone(), min=0)
    losses = torch.empty(steps, dtype=a.dtype)
    for t in range(steps):
        z = batches(t)
        losses[t] = loss_fn(z, a, p).mean()
        p = torch.clamp(p - lr * gp_fn(z, a, p), min=0)
        a = a - lr * ga_fn(z, a, p)
    return a, p, losses
