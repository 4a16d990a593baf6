#!/usr/bin/python3
"""Writes tests/fixtures/interp_ref.h5: an independent PyTorch reference for
the runner's Grad-CAM, Grad-CAM++ and saliency (runner/analyses/interp.c).

The model is tests/fixtures/interp_model.yaml (a small SimpleGAPCNN: three
conv blocks, global average pooling, one linear layer) with PyTorch's default
initialisation under a fixed seed; the inputs are four synthetic coloured
images (a textured background in a palette colour and white strokes). For each
input the file holds:

  /inputs       float32 (n, 3, 28, 28) in [0, 1]
  /labels       int32 (n)       the "true" labels saliency's CE uses
  /requested    int32 (n)       class asked for: -1 = predicted
  /classes      int32 (n)       class explained (requested, or the argmax)
  /logits       float32 (n, 10)
  /gradcam_raw  float32 (n, 7, 7)  ReLU(sum_k alpha_k A_k) at conv3's output
                                 (before relu3), alpha_k = mean of d logit_c / d A_k
  /gradcam      float32 (n, 28, 28) gradcam_raw upsampled with
                                 F.interpolate(bilinear, align_corners=False),
                                 divided by its max (an all-zero map stays zero)
  /gradcampp_raw, /gradcampp   the same with pytorch-grad-cam's GradCAMPlusPlus
                                 weights (alpha = g^2 / (2 g^2 + sum(A) g^3 + 1e-6),
                                 0 where g == 0; w = sum(alpha relu(g)))
  /saliency     float32 (n, 28, 28) sum over channels of |d CE(logits, label) / d x|
                                 per sample
  /models/main/<name>.<param>  the weights as a state_dict (the runner loads them)
  /config       attr yaml: a spec of the model, so the file loads as a run

Eval mode throughout. Grad-CAM arithmetic is in float64 on the float32
activations and gradients, as the runner does it.

usage: /usr/bin/python3 tests/reference/make_interp_fixture.py [OUT.h5]
Needs Debian's python3-torch, python3-h5py, python3-numpy.
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "interp_ref.h5")


class InterpGapCNN(nn.Module):
    """tests/fixtures/interp_model.yaml; attribute names are its node names."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.dropout = nn.Dropout(0.25)
        self.fc = nn.Linear(8, 10)
        self.a3 = None

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)   # 28 -> 14
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)   # 14 -> 7
        a3 = self.conv3(x)                           # the Grad-CAM tap, 7x7
        if a3.requires_grad:
            a3.retain_grad()
        self.a3 = a3
        x = F.max_pool2d(F.relu(a3), 2)              # 7 -> 3
        x = x.mean(dim=(2, 3))
        return self.fc(self.dropout(x))


def make_inputs(gen):
    """Four 28x28 images: textured background of a palette colour, white strokes."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    imgs = []
    for i, rgb in enumerate(colours):
        noise = 0.4 + 0.6 * torch.rand(28, 28, generator=gen)
        img = torch.stack([noise * c / 255.0 for c in rgb])
        stroke = torch.zeros(28, 28, dtype=torch.bool)
        if i == 0:
            stroke[3:9, 2:7] = True                  # a blob in the top-left
        elif i == 1:
            stroke[6:22, 13:16] = True               # a vertical bar
        elif i == 2:
            yy, xx = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")
            r = ((yy - 14) ** 2 + (xx - 12) ** 2).float().sqrt()
            stroke = (r > 5) & (r < 8)               # a ring
        else:
            stroke[20:24, 4:24] = True               # a bar at the bottom
            stroke[4:20, 20:23] = True
        img[:, stroke] = 1.0
        imgs.append((torch.round(img * 255) / 255).float())
    return torch.stack(imgs)


def cam_maps(A, G, plus):
    A = A.double()
    G = G.double()
    if plus:
        g2 = G ** 2
        g3 = g2 * G
        sa = A.sum(dim=(2, 3), keepdim=True)
        aij = g2 / (2 * g2 + sa * g3 + 1e-6)
        aij = torch.where(G != 0, aij, torch.zeros_like(aij))
        w = (torch.clamp(G, min=0) * aij).sum(dim=(2, 3))
    else:
        w = G.mean(dim=(2, 3))
    raw = F.relu((w[:, :, None, None] * A).sum(1)).float()
    up = F.interpolate(raw[:, None], size=(28, 28), mode="bilinear", align_corners=False)[:, 0]
    mx = up.amax(dim=(1, 2), keepdim=True)
    up = torch.where(mx > 0, up / torch.where(mx > 0, mx, torch.ones_like(mx)), up)
    return raw, up


def main(argv):
    out = argv[1] if len(argv) > 1 else OUT
    torch.manual_seed(1)
    model = InterpGapCNN().eval()
    gen = torch.Generator().manual_seed(99)
    x = make_inputs(gen)
    n = x.shape[0]
    labels = torch.tensor([0, 1, 2, 3])
    requested = torch.tensor([-1, -1, 3, 7])

    with torch.no_grad():
        logits = model(x)
    classes = torch.where(requested < 0, logits.argmax(1), requested)

    res = {}
    for plus in (False, True):
        model.zero_grad()
        logits_g = model(x)
        score = logits_g[torch.arange(n), classes].sum()   # the class score, not the softmax
        score.backward()
        raw, up = cam_maps(model.a3.detach(), model.a3.grad.detach(), plus)
        key = "gradcampp" if plus else "gradcam"
        res[key + "_raw"] = raw
        res[key] = up

    xs = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(xs), labels, reduction="sum")  # per-sample gradients
    loss.backward()
    res["saliency"] = xs.grad.abs().sum(1)

    for k in ("gradcam", "gradcampp"):
        for i in range(n):
            if float(res[k][i].max()) <= 0:
                print(f"warning: {k}[{i}] is all zero", file=sys.stderr)

    spec = ("name: interp_ref\n"
            "data: {dir: tests/fixtures/mnist, colouring: background}\n"
            "model:\n  name: interp_gap_cnn\n  layers:\n"
            "    - {type: conv2d, name: conv1, filters: 6, kernel: 3, padding: 1}\n"
            "    - {type: relu, name: relu1}\n"
            "    - {type: maxpool2d, name: pool1, kernel: 2}\n"
            "    - {type: conv2d, name: conv2, filters: 8, kernel: 3, padding: 1}\n"
            "    - {type: relu, name: relu2}\n"
            "    - {type: maxpool2d, name: pool2, kernel: 2}\n"
            "    - {type: conv2d, name: conv3, filters: 8, kernel: 3, padding: 1}\n"
            "    - {type: relu, name: relu3}\n"
            "    - {type: maxpool2d, name: pool3, kernel: 2}\n"
            "    - {type: global_avg_pool, name: features}\n"
            "    - {type: dropout, name: dropout, p: 0.25}\n"
            "    - {type: linear, name: fc, units: 10}\n"
            "train: {epochs: 1}\n")
    with h5py.File(out, "w") as f:
        f.attrs["status"] = "completed"
        f.attrs["format_version"] = 1
        f.create_group("config").attrs["yaml"] = spec
        f.create_dataset("inputs", data=x.numpy(), compression="gzip")
        f.create_dataset("labels", data=labels.numpy().astype(np.int32))
        f.create_dataset("requested", data=requested.numpy().astype(np.int32))
        f.create_dataset("classes", data=classes.numpy().astype(np.int32))
        f.create_dataset("logits", data=logits.numpy())
        for k, v in res.items():
            f.create_dataset(k, data=v.detach().numpy().astype(np.float32), compression="gzip")
        g = f.create_group("models/main")
        for k, v in model.state_dict().items():
            g.create_dataset(k, data=v.numpy())
        g.attrs["architecture"] = "interp_gap_cnn"
    print(f"{out}: {n} inputs, classes {classes.tolist()}, "
          f"logits argmax {logits.argmax(1).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
