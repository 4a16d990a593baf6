#!/usr/bin/python3
"""PyTorch side of bench/bench_program.c: the time of one training step of
SimpleGAPCNN (plain cross-entropy) against one step of Task 4's Method 3
(gradient reversal), on the CPU with a fixed thread count.

M3 as the study wrote it (SPEC.md): per batch 5 adversary steps (GRL alpha 0,
Adam 2e-3 on the colour head only, clip 1.0) and 1 main step (CE(digit) +
CE(colour through the GRL), Adam 1e-3 on backbone + digit head, clip 1.0).
Each adversary step runs the whole model again, backbone included, and its
backward goes back through the GRL into the backbone (alpha 0 makes those
gradients zero, autograd computes them anyway): that is the recipe whose
epoch SPEC.md measured at 6.5x a plain one. `detached` is the cheaper
variant a careful PyTorch user would write: the backbone features computed
once per batch under no_grad for the adversary steps, then the main step.

The images are random (timing does not depend on the pixel values).
usage: bench/torch_m3_step.py [--threads N] [--steps S] [--rounds R]
Prints a table and: RESULT plain_ms=... m3_ms=... m3_detached_ms=...
Needs Debian's python3-torch: run it with /usr/bin/python3.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.alpha * g, None


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return x.mean(dim=(2, 3))


def color_head():
    return nn.Sequential(nn.Linear(128, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    backbone, drop, fc, head = Backbone(), nn.Dropout(0.25), nn.Linear(128, 10), color_head()
    main_params = list(backbone.parameters()) + list(fc.parameters())
    main_opt = torch.optim.Adam(main_params, lr=1e-3)
    adv_opt = torch.optim.Adam(head.parameters(), lr=2e-3)
    x = torch.rand(a.batch, 3, 28, 28)
    y = torch.randint(0, 10, (a.batch,))
    c = torch.randint(0, 10, (a.batch,))

    def plain():
        main_opt.zero_grad()
        loss = F.cross_entropy(fc(drop(backbone(x))), y)
        loss.backward()
        main_opt.step()

    def adversary(feats):
        adv_opt.zero_grad()
        loss = F.cross_entropy(head(GradReverse.apply(feats, 0.0)), c)
        loss.backward()
        nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        adv_opt.step()

    def main_step(alpha):
        main_opt.zero_grad()
        feats = backbone(x)
        loss = F.cross_entropy(fc(drop(feats)), y) + \
            F.cross_entropy(head(GradReverse.apply(feats, alpha)), c)
        loss.backward()
        nn.utils.clip_grad_norm_(main_params, 1.0)
        main_opt.step()

    def m3():
        for _ in range(5):
            adversary(backbone(x))
        main_step(0.25)

    def m3_detached():
        with torch.no_grad():
            feats = backbone(x)
        for _ in range(5):
            adversary(feats)
        main_step(0.25)

    runs = {"plain": plain, "m3": m3, "m3_detached": m3_detached}
    best = {k: float("inf") for k in runs}
    for f in runs.values():  # warm-up
        for _ in range(3):
            f()
    for _ in range(a.rounds):
        for name, f in runs.items():
            t0 = time.perf_counter()
            for _ in range(a.steps):
                f()
            best[name] = min(best[name], (time.perf_counter() - t0) / a.steps * 1e3)
    print(f"PyTorch {torch.__version__}, {a.threads} threads, batch {a.batch}, "
          f"best of {a.rounds} rounds of {a.steps} steps")
    for name in runs:
        print(f"  {name:12s} {best[name]:8.2f} ms/step  {best[name] / best['plain']:5.2f}x plain")
    print(f"RESULT plain_ms={best['plain']:.3f} m3_ms={best['m3']:.3f} "
          f"m3_detached_ms={best['m3_detached']:.3f}")


if __name__ == "__main__":
    main()
