#!/usr/bin/python3
"""Independent reference for the saliency loss (runner/saliency.h), written to
tests/fixtures/saliency_ref.h5 for tests/test_saliency.c.

The loss is computed the way the study did it, by double backprop in PyTorch:
g = torch.autograd.grad(sum_i CE_i, x, create_graph=True) (the sum's input
gradient is each sample's own dCE_i/dx_i), then R from g, then
torch.autograd.grad(R, parameters). Everything runs in float64 from float32
weights and inputs (which is what the fixture stores), so the reference is
exact to float32 rounding of the C side's inputs.

The model is the C test's small one, with the same node names:
conv1(3->4, 3x3, pad 1) relu1 pool1(max 2) conv2(4->6, 3x3, pad 1) relu2
features(GAP) [dropout] fc(6->10), on 3x8x8 images. The 4 images have white
strokes (every channel in [0.96, 1]: foreground) on a textured coloured
background (every channel <= 0.9: background, min(R,G,B) < 0.95); every pixel
is random, so no max-pool window has a tie.

Fixture layout (float32 inputs, float64 results):
  /x (4,3,8,8) f32, /labels (4) u8, /weight (1) f64: the loss weight used
  /weights/<node>.<param>       PyTorch state_dict layout (OIHW, [out,in])
  /g (4,3,8,8) f64              per-sample input gradient
  /cases/<case>/R (1) f64       weight * R
  /cases/<case>/<node>.<param>  d(weight * R)/d param, f64
cases: l1_mean_background, l2_mean_background, l1_background_share,
l2_background_share, dropout_l1_mean_background (model with dropout p=0.5
before fc, in eval mode).

usage: /usr/bin/python3 tests/reference/make_saliency_fixture.py [OUT.h5]
(Debian's python3-torch and python3-h5py; a pyenv python on PATH lacks them.)
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

THRESHOLD = 0.95
WEIGHT = 2.5


class Small(nn.Module):
    def __init__(self, dropout):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.dropout = nn.Dropout(0.5) if dropout else nn.Identity()
        self.fc = nn.Linear(6, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x)).mean(dim=(2, 3))
        return self.fc(self.dropout(x))


def images(rng, n):
    x = np.empty((n, 3, 8, 8), np.float32)
    for i in range(n):
        colour = rng.uniform(0.15, 0.9, size=3)
        noise = rng.uniform(0.5, 1.0, size=(8, 8))
        x[i] = colour[:, None, None] * noise[None]
        stroke = np.zeros((8, 8), bool)
        r = rng.integers(1, 7)
        stroke[r, 1:7] = True           # a horizontal bar
        stroke[1:7, rng.integers(1, 7)] = True  # and a vertical one
        x[i][:, stroke] = rng.uniform(0.96, 1.0, size=(3, int(stroke.sum())))
    return x


def saliency(model, x, y, norm, reduce):
    x = x.clone().requires_grad_(True)
    ce = F.cross_entropy(model(x), y, reduction="sum")
    g, = torch.autograd.grad(ce, x, create_graph=True)
    if norm == "l1":
        s = g.abs().sum(1)  # abs' derivative at 0 is 0, as in the runner
    else:
        ss = (g * g).sum(1)
        pos = ss > 0        # subgradient 0 where the gradient vanishes
        s = torch.where(pos, torch.sqrt(torch.where(pos, ss, torch.ones_like(ss))),
                        torch.zeros_like(ss))
    mask = (x.detach().min(dim=1).values < THRESHOLD).to(s.dtype)
    back = (mask * s).sum(dim=(1, 2))
    if reduce == "mean_background":
        r = back / mask.sum(dim=(1, 2))
    else:
        r = back / s.sum(dim=(1, 2))
    return WEIGHT * r.mean(), g.detach()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "saliency_ref.h5")
    torch.manual_seed(20240605)
    rng = np.random.default_rng(7)
    plain = Small(dropout=False)        # float32 default init; these are the stored weights
    state = {k: v.detach().clone() for k, v in plain.state_dict().items()}
    x32 = images(rng, 4)
    labels = np.array([3, 0, 7, 9], np.uint8)
    x = torch.from_numpy(x32).double()
    y = torch.from_numpy(labels.astype(np.int64))

    with h5py.File(out, "w") as f:
        f["x"] = x32
        f["labels"] = labels
        f["weight"] = np.array([WEIGHT])
        for k, v in state.items():
            f["weights/" + k] = v.numpy().astype(np.float32)
        cases = [("l1_mean_background", False, "l1", "mean_background"),
                 ("l2_mean_background", False, "l2", "mean_background"),
                 ("l1_background_share", False, "l1", "background_share"),
                 ("l2_background_share", False, "l2", "background_share"),
                 ("dropout_l1_mean_background", True, "l1", "mean_background")]
        for name, dropout, norm, reduce in cases:
            model = Small(dropout).double()
            model.load_state_dict({k: v.double() for k, v in state.items()})
            model.eval()
            params = dict(model.named_parameters())
            R, g = saliency(model, x, y, norm, reduce)
            grads = torch.autograd.grad(R, list(params.values()))
            f["cases/%s/R" % name] = np.array([R.item()])
            for (k, _), gr in zip(params.items(), grads):
                f["cases/%s/%s" % (name, k)] = gr.numpy()
            if name == "l1_mean_background":
                f["g"] = g.numpy()
            print("%-28s R = %.9g" % (name, R.item()))
    print("wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
