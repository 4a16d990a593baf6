#!/usr/bin/python3
"""PyTorch side of the ResNet-18 speed comparison: the CIFAR-style ResNet-18 of
experiments/models/resnet18.yaml (task1_resnet18), trained at batch 64 on 28x28
Colored MNIST, then evaluation throughput, on the CPU with a fixed thread count.

The work is the runner's `bench_train --spec experiments/task1_resnet18.yaml
data.train_limit=K data.test_limit=M` (bench/run.sh runs both): Adam 1e-3,
batch 64, the first K MNIST train images less the 10% validation split, one
epoch; then forward-only batches of 256 over the first M hard test images
(median of several repeats). Data as in bench/torch_simple_gap_cnn.py (numpy
colouring following SPEC.md, one float tensor in memory, no DataLoader). The
first training steps warm up the allocator and oneDNN's primitive cache and
are not timed (--warmup).

usage: bench/torch_resnet18.py [--threads N] [--mnist DIR] [--train-limit K] [--test-limit M]
                               [--repeats R] [--warmup S]
Prints a table and one line: RESULT train_ips=... eval_ips=... peak_rss_mib=...
Run it with /usr/bin/python3 (Debian's python3-torch).
"""
import argparse
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
from torch_simple_gap_cnn import colourise, read_idx  # noqa: E402


def make_data(mnist_dir, seed, train_limit, test_limit, bias=0.95, val_fraction=0.1):
    """bench/torch_simple_gap_cnn.py's data, coloured only for the first
    train_limit / test_limit images, so that peak RSS counts the model's
    memory and not a whole float32 MNIST."""
    rng = np.random.default_rng(seed)
    tr_x = read_idx(os.path.join(mnist_dir, "train-images-idx3-ubyte"))[:train_limit]
    tr_y = read_idx(os.path.join(mnist_dir, "train-labels-idx1-ubyte"))[:train_limit].astype(np.int64)
    te_x = read_idx(os.path.join(mnist_dir, "t10k-images-idx3-ubyte"))[:test_limit]
    te_y = read_idx(os.path.join(mnist_dir, "t10k-labels-idx1-ubyte"))[:test_limit].astype(np.int64)
    easy_c = np.where(rng.random(len(tr_y)) < bias, tr_y, rng.integers(0, 10, len(tr_y)))
    hard_c = (te_y + rng.integers(1, 10, len(te_y))) % 10
    easy, hard = colourise(tr_x, easy_c, rng), colourise(te_x, hard_c, rng)
    train_i = rng.permutation(len(tr_y))[int(round(len(tr_y) * val_fraction)):]
    as_float = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0)
    return (as_float(easy[train_i]), torch.from_numpy(tr_y[train_i])), (as_float(hard), torch.from_numpy(te_y))


class BasicBlock(nn.Module):
    """kuangliu/pytorch-cifar BasicBlock; the runner's basic_block expands to
    the same nodes (conv1 bn1 relu1 conv2 bn2 [shortcut.0 shortcut.1] add relu)."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cfg = [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]
        blocks, cin = [], 64
        for cout, stride in cfg:
            blocks.append(BasicBlock(cin, cout, stride))
            cin = cout
        self.layer1 = nn.Sequential(*blocks[0:2])
        self.layer2 = nn.Sequential(*blocks[2:4])
        self.layer3 = nn.Sequential(*blocks[4:6])
        self.layer4 = nn.Sequential(*blocks[6:8])
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(x.mean(dim=(2, 3)))


def flops_per_image(model):
    """2 x multiply-adds of every Conv2d and Linear (forward), and of a
    training step (3x, less the image's own input gradient): bench_train's count."""
    macs = []

    def hook(mod, inp, out):
        positions = out.shape[2] * out.shape[3] if out.dim() == 4 else 1
        macs.append(mod.weight.numel() * positions)

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 28, 28))
    for h in hs:
        h.remove()
    fwd = 2.0 * sum(macs)
    return fwd, 3 * fwd - 2.0 * macs[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mnist", default="data/mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--eval-batch", type=int, default=256)
    ap.add_argument("--train-limit", type=int, default=3200, help="first K MNIST train images (runner: data.train_limit)")
    ap.add_argument("--test-limit", type=int, default=1024, help="first M MNIST test images (runner: data.test_limit)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    (xtr, ytr), (xte, yte) = make_data(a.mnist, a.seed, a.train_limit, a.test_limit)

    model = ResNet18()
    fwd_flop, train_flop = flops_per_image(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"mkldnn {torch.backends.mkldnn.is_available()}; ResNet-18, {len(ytr)} train / "
          f"{len(yte)} test images")
    print(f"forward {fwd_flop / 1e6:.2f} MFLOP/image; training step {train_flop / 1e6:.2f} MFLOP/image")

    model.train()
    perm = torch.randperm(len(ytr))
    steps = list(range(0, len(ytr) - a.batch + 1, a.batch))
    t0 = None
    for i, s in enumerate(steps):
        if i == a.warmup:
            t0 = time.perf_counter()
        idx = perm[s:s + a.batch]
        loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    timed = len(steps) - a.warmup
    if timed < 1:
        print("torch_resnet18: --train-limit leaves no timed step", file=sys.stderr)
        return 1
    t_train = time.perf_counter() - t0
    train_ips = timed * a.batch / t_train

    model.eval()
    times = []
    with torch.no_grad():
        for rep in range(a.repeats + 1):  # the first pass warms up
            t0 = time.perf_counter()
            for s in range(0, len(yte), a.eval_batch):
                model(xte[s:s + a.eval_batch])
            if rep > 0:
                times.append(time.perf_counter() - t0)
    eval_ips = len(yte) / statistics.median(times)

    print(f"{'work':34s} {'images':>8s} {'seconds':>9s} {'images/s':>10s} {'GFLOP/s':>9s}")
    print(f"{'train steps (batch 64)':34s} {timed * a.batch:8d} {t_train:9.2f} {train_ips:10.1f} "
          f"{train_ips * train_flop / 1e9:9.1f}")
    print(f"{'eval forward (batch 256)':34s} {len(yte):8d} {statistics.median(times):9.3f} "
          f"{eval_ips:10.1f} {eval_ips * fwd_flop / 1e9:9.1f}   (median of {a.repeats})")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"peak RSS {rss:.1f} MiB (data: the limited images only, as float32)")
    print(f"RESULT train_ips={train_ips:.1f} eval_ips={eval_ips:.1f} peak_rss_mib={rss:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
