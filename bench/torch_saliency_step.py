#!/usr/bin/python3
"""PyTorch side of bench/bench_saliency.c: the cost of the saliency loss
(Task 4, M2) by double backprop, relative to a plain training step, on
SimpleGAPCNN at batch 64 with a fixed thread count.

  plain     forward (train mode) + mean CE backward
  saliency  x.requires_grad; g = autograd.grad(sum CE_i, x, create_graph=True)
            (each sample's own input gradient); loss = mean CE + 0.5 * mean
            over samples of the mean over background pixels of sum_c |g|;
            loss.backward() (the second-order pass)
No optimizer update on either side. Inputs are synthetic Colored-MNIST-like
images (white strokes on a textured coloured background), as in the C bench.
Median of --repeats steps after warm-up, the kinds interleaved.

usage: /usr/bin/python3 bench/torch_saliency_step.py [--threads N] [--repeats K]
Prints a table and one line: RESULT plain_ms=... saliency_ms=... ratio=...
(Debian's python3-torch: a pyenv python on PATH lacks it.)
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SimpleGAPCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.dropout = nn.Dropout(0.25)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return self.fc(self.dropout(x.mean(dim=(2, 3))))


def images(n, gen):
    col = torch.rand(n, 3, 1, 1, generator=gen)
    noise = 0.4 + 0.6 * torch.rand(n, 1, 28, 28, generator=gen)
    x = col * noise * 0.9
    yy, xx = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")
    for i in range(n):
        r, c = torch.randint(7, 21, (2,), generator=gen).tolist()
        stroke = (((yy - r).abs() < 2) & (xx > 4) & (xx < 24)) | \
                 (((xx - c).abs() < 2) & (yy > 4) & (yy < 24))
        x[i][:, stroke] = 1.0
    return x, torch.randint(0, 10, (n,), generator=gen)


def plain_step(model, x, y):
    model.zero_grad(set_to_none=False)
    F.cross_entropy(model(x), y).backward()


def saliency_step(model, x, y, weight=0.5, threshold=0.95):
    model.zero_grad(set_to_none=False)
    x = x.detach().requires_grad_(True)
    logits = model(x)
    g, = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x, create_graph=True)
    mask = (x.detach().min(dim=1).values < threshold).float()
    sal = ((g.abs().sum(1) * mask).sum(dim=(1, 2)) / mask.sum(dim=(1, 2)).clamp(min=1)).mean()
    (F.cross_entropy(logits, y) + weight * sal).backward()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    model = SimpleGAPCNN().train()
    x, y = images(64, gen)
    steps = {"plain": plain_step, "saliency": saliency_step}
    for _ in range(3):
        for f in steps.values():
            f(model, x, y)
    times = {k: [] for k in steps}
    for _ in range(args.repeats):
        for k, f in steps.items():
            t0 = time.perf_counter()
            f(model, x, y)
            times[k].append((time.perf_counter() - t0) * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("PyTorch %s SimpleGAPCNN, batch 64, %d threads, median of %d steps"
          % (torch.__version__, args.threads, args.repeats))
    print("%-10s %10s %10s" % ("step", "ms", "x plain"))
    for k in steps:
        print("%-10s %10.2f %9.2fx" % (k, med[k], med[k] / med["plain"]))
    print("RESULT plain_ms=%.3f saliency_ms=%.3f ratio=%.3f"
          % (med["plain"], med["saliency"], med["saliency"] / med["plain"]))


if __name__ == "__main__":
    main()
