# pyright: reportIndexIssue=false, reportAttributeAccessIssue=false, reportCallIssue=false
# pyright: reportOperatorIssue=false, reportArgumentType=false, reportOptionalMemberAccess=false
"""Plain-torch references for LPIPS-VGG16 (torch is a test extra; torchvision is not used: the
PyPI build does not import beside torch 2.13).

* `TorchVGG16Features`: torchvision's ``vgg16().features`` (same module indices, so its
  ``state_dict()`` has torchvision's keys ``features.0.weight`` ...).
* `TorchLPIPS`: the ``lpips`` package's ``LPIPS(net="vgg", version="0.1")`` forward (scaling
  layer, the five taps, channel unit-normalization with eps 1e-10, squared difference, 1x1 lin
  convs without bias behind a Dropout, spatial mean, sum over taps); ``lin_state_dict()`` has the
  keys of ``weights/v0.1/vgg.pth`` (``lin0.model.1.weight`` ...).
* `NvidiaVGG16`: a module laid out as NVIDIA's ``vgg16.pt`` (``layers.conv1..13``,
  ``layers.fc1..3``, ``lpips0..4``) whose ``forward(img, resize_images, return_lpips)`` takes
  ``[0, 255]`` images and returns the features whose squared distance is LPIPS; scripted and
  saved with ``torch.jit`` it gives an archive with the real member structure (``data.pkl``,
  ``data/N``, ``code/``, ``constants.pkl``).

Written from the published descriptions of these networks, independently of jaxedit's code.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
TAPS_AFTER = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in features
CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class TorchVGG16Features(nn.Module):
    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                cin = int(v)
        self.features = nn.Sequential(*layers)

    def taps(self, x):
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS_AFTER:
                out.append(x)
            if i == TAPS_AFTER[-1]:
                break
        return out


class _Lin(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, bias=False))


class TorchLPIPS(nn.Module):
    def __init__(self):
        super().__init__()
        self.vgg = TorchVGG16Features()
        self.lins = nn.ModuleList([_Lin(c) for c in CHANNELS])
        self.register_buffer("shift", torch.tensor(SHIFT, dtype=torch.float64)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(SCALE, dtype=torch.float64)[None, :, None, None])

    def lin_state_dict(self):
        return {f"lin{k}.model.1.weight": m.model[1].weight.detach().clone() for k, m in
                enumerate(self.lins)}  # fmt: skip

    def forward(self, in0, in1):
        """in0, in1: [N, 3, H, W] in [-1, 1] -> [N] distances."""
        f0 = self.vgg.taps((in0 - self.shift) / self.scale)
        f1 = self.vgg.taps((in1 - self.shift) / self.scale)
        val = 0
        for k in range(5):
            n0 = f0[k] / (torch.sqrt(torch.sum(f0[k] ** 2, dim=1, keepdim=True)) + 1e-10)
            n1 = f1[k] / (torch.sqrt(torch.sum(f1[k] ** 2, dim=1, keepdim=True)) + 1e-10)
            val = val + self.lins[k].model((n0 - n1) ** 2).mean([2, 3], keepdim=True)
        return val.reshape(-1)


def set_from_jax(model: TorchLPIPS, params) -> TorchLPIPS:
    """Copy an `LPIPS.params` pytree (HWIO kernels) into the torch model (OIHW)."""
    convs = [m for m in model.vgg.features if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for m, p in zip(convs, params["conv"]):
            m.weight.copy_(torch.from_numpy(np.asarray(p["w"]).transpose(3, 2, 0, 1).copy()))
            m.bias.copy_(torch.from_numpy(np.array(p["b"])))
        for m, w in zip(model.lins, params["lin"]):
            m.model[1].weight.copy_(torch.from_numpy(np.array(w)).reshape(1, -1, 1, 1))
    return model.eval()


class _NvLayers(nn.Module):
    def __init__(self):
        super().__init__()
        cin, j = 3, 1
        for v in CFG:
            if v != "M":
                setattr(self, f"conv{j}", nn.Conv2d(cin, int(v), 3, padding=1))
                cin, j = int(v), j + 1
        # the real file's classifier is 25088 -> 4096 -> 4096 -> 1000; tiny here (ignored)
        self.fc1 = nn.Linear(8, 4)
        self.fc2 = nn.Linear(4, 4)
        self.fc3 = nn.Linear(4, 2)


class NvidiaVGG16(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = _NvLayers()
        for k, c in enumerate(CHANNELS):
            self.register_parameter(f"lpips{k}", nn.Parameter(torch.ones(c, 1, 1)))
        mean = torch.tensor([(1 + s) * 127.5 for s in SHIFT]).reshape(1, 3, 1, 1)
        std = torch.tensor([s * 127.5 for s in SCALE]).reshape(1, 3, 1, 1)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def convs(self) -> list[nn.Conv2d]:
        return [getattr(self.layers, f"conv{j}") for j in range(1, 14)]

    def _tap(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = x / (torch.sqrt(torch.sum(x**2, dim=1, keepdim=True)) + 1e-10)
        hw = float(x.shape[2] * x.shape[3])
        return (n * torch.sqrt(w / hw)).flatten(1)

    def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False):
        x = img
        if resize_images:
            x = F.interpolate(x, size=(224, 224), mode="area")
        x = (x - self.mean) / self.std
        L = self.layers
        x = F.relu(L.conv2(F.relu(L.conv1(x))))
        f0 = self._tap(x, self.lpips0)
        x = F.max_pool2d(x, 2, 2)
        x = F.relu(L.conv4(F.relu(L.conv3(x))))
        f1 = self._tap(x, self.lpips1)
        x = F.max_pool2d(x, 2, 2)
        x = F.relu(L.conv7(F.relu(L.conv6(F.relu(L.conv5(x))))))
        f2 = self._tap(x, self.lpips2)
        x = F.max_pool2d(x, 2, 2)
        x = F.relu(L.conv10(F.relu(L.conv9(F.relu(L.conv8(x))))))
        f3 = self._tap(x, self.lpips3)
        x = F.max_pool2d(x, 2, 2)
        x = F.relu(L.conv13(F.relu(L.conv12(F.relu(L.conv11(x))))))
        f4 = self._tap(x, self.lpips4)
        if return_lpips:
            return torch.cat([f0, f1, f2, f3, f4], dim=1)
        return x.flatten(1)


def nvidia_from_jax(params) -> NvidiaVGG16:
    model = NvidiaVGG16()
    with torch.no_grad():
        for m, p in zip(model.convs(), params["conv"]):
            m.weight.copy_(torch.from_numpy(np.asarray(p["w"]).transpose(3, 2, 0, 1).copy()))
            m.bias.copy_(torch.from_numpy(np.array(p["b"])))
        for k, w in enumerate(params["lin"]):
            getattr(model, f"lpips{k}").copy_(torch.from_numpy(np.array(w)).reshape(-1, 1, 1))
    return model.eval()
