"""A PyTorch StyleGAN2 (skip architecture, no conditioning) written for benchmarking.

It loads jaxedit's parameters (the *same converted weights*: ``params_from_jaxedit``) and computes
what NVIDIA's stylegan2-ada-pytorch computes with ``fused_modconv=False`` and
``noise_mode='const'``: modulation as scale-conv-scale, the up-conv as a stride-2 transposed conv
followed by the FIR, the skip image upsampled by the FIR. NCHW throughout. Pure functions of a
parameter dict (so ``torch.func`` transforms apply).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def params_from_jaxedit(gen, device="cpu", dtype=torch.float32) -> dict:
    """jaxedit StyleGAN2 generator -> {flat key: torch tensor} in torch layouts (OIHW, [out, in])."""
    from flax import nnx

    flat = {
        "/".join(map(str, path)): np.asarray(var.get_value())
        for path, var in nnx.to_flat_state(nnx.state(gen))
    }
    out = {}
    for k, v in flat.items():
        if v.ndim == 4:  # HWIO -> OIHW
            v = v.transpose(3, 2, 0, 1)
        elif v.ndim == 2 and k.endswith("/weight"):  # dense [in, out] -> [out, in]
            v = v.T
        elif k.endswith("/const"):
            v = v.transpose(2, 0, 1)
        out[k] = torch.tensor(np.array(v), dtype=dtype, device=device)
    return out


def _fc(p, name, x, lr=1.0, act="linear"):
    w = p[f"{name}/weight"]
    x = F.linear(x, w * (lr / math.sqrt(w.shape[1])), p[f"{name}/bias"] * lr)
    return F.leaky_relu(x, 0.2) * math.sqrt(2) if act == "lrelu" else x


def mapping(p, cfg, z, psi: float = 1.0):
    x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
    for i in range(cfg.mapping_layers):
        x = _fc(p, f"mapping_net/fc{i}", x, cfg.mapping_lr_multiplier, "lrelu")
    ws = x[:, None].expand(-1, cfg.num_ws, -1)
    if psi != 1.0:
        w_avg = p["mapping_net/w_avg"]
        ws = w_avg + psi * (ws - w_avg)
    return ws


def _fir(cfg, dtype, device):
    f = torch.as_tensor(cfg.resample_kernel, dtype=dtype, device=device)
    f2 = torch.outer(f, f)
    return f2 / f2.sum()


def _upfirdn(x, f2, pad, gain):
    c = x.shape[1]
    x = F.pad(x, pad)
    k = (f2 * gain).flip(0, 1)[None, None].expand(c, 1, -1, -1)
    return F.conv2d(x, k, groups=c)


def _modconv(x, w, s, demod, up, f2):
    x = x * s[:, :, None, None]
    if up == 2:
        y = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
        y = _upfirdn(y, f2, (1, 1, 1, 1), 4.0)
    else:
        y = F.conv2d(x, w, padding=w.shape[-1] // 2)
    if demod:
        d = (s.square() @ w.square().sum((2, 3)).T + 1e-8).rsqrt()
        y = y * d[:, :, None, None]
    return y


def synthesis(p, cfg, ws):
    n = ws.shape[0]
    f2 = _fir(cfg, ws.dtype, ws.device)
    x = img = None
    slot = 0
    for r in cfg.block_resolutions:
        b = f"synthesis_net/b{r}"
        if r == 4:
            x = p[f"{b}/const"][None].expand(n, -1, -1, -1)
            convs = [("conv1", 1)]
        else:
            convs = [("conv0", 2), ("conv1", 1)]
        for name, up in convs:
            lay = f"{b}/{name}"
            s = _fc(p, f"{lay}/affine", ws[:, slot])
            x = _modconv(x, p[f"{lay}/weight"], s, True, up, f2)
            if f"{lay}/noise_const" in p:  # models built with use_noise=False have none
                x = x + p[f"{lay}/noise_const"][None, None] * p[f"{lay}/noise_strength"]
            x = F.leaky_relu(x + p[f"{lay}/bias"][None, :, None, None], 0.2) * math.sqrt(2)
            slot += 1
        if img is not None:
            img = _up_img(img, f2)
        w_rgb = p[f"{b}/torgb/weight"]
        s = _fc(p, f"{b}/torgb/affine", ws[:, slot]) / math.sqrt(w_rgb.shape[1])
        y = _modconv(x, w_rgb, s, False, 1, f2) + p[f"{b}/torgb/bias"][None, :, None, None]
        img = y if img is None else img + y
    return img


def _up_img(img, f2):
    """NVIDIA upsample2d (x2): zero insertion (functional, so torch.func applies), pad (2, 1),
    FIR with gain 4."""
    n, c, h, w = img.shape
    u = torch.stack([img, torch.zeros_like(img)], dim=-1).reshape(n, c, h, 2 * w)
    u = torch.stack([u, torch.zeros_like(u)], dim=-2).reshape(n, c, 2 * h, 2 * w)
    return _upfirdn(u, f2, (2, 1, 2, 1), 4.0)
