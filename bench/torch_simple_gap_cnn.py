#!/usr/bin/python3
"""PyTorch side of the speed comparison: SimpleGAPCNN (experiments/models/
simple_gap_cnn.yaml) trained for one epoch on Colored MNIST, then evaluation
throughput, on the CPU with a fixed thread count.

The work is the runner's (bench/bench_train.c): Adam 1e-3, batch 64, one
epoch over the 54,000-image easy train split, then forward-only batches of 256
over the 10,000 hard test images (median of several repeats). The data is
coloured with numpy following SPEC.md; it has the runner's distribution, not
its bytes. Images sit in memory as one float tensor and batches are indexed
out of it, so no DataLoader cost is measured.

usage: bench/torch_simple_gap_cnn.py [--threads N] [--mnist DIR] [--repeats K] [--seed S]
                                     [--train-limit K] [--device cpu|cuda]

With --device cuda (the GPU comparison of scripts/gpu-check.sh) the data and
the model live on the GPU (cuDNN, eager mode, torch's defaults: cudnn.benchmark
off, TF32 off for convolutions only when torch says so), batches are indexed on
the GPU, and every timer waits for the device (torch.cuda.synchronize).
Prints a table and one line: RESULT train_ips=... eval_ips=... peak_rss_mib=...

Needs Debian's python3-torch: run it with /usr/bin/python3 (a pyenv python on
PATH does not see it). With glibc's default malloc thresholds PyTorch maps and
unmaps its large activation buffers on every batch; bench/run.sh raises
MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ to measure its best case.
"""
import argparse
import gzip
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# SPEC.md's palette: colour k is digit k's.
PALETTE = np.array([
    (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255),
    (255, 0, 255), (255, 128, 0), (0, 0, 0), (128, 0, 255), (139, 69, 19),
], dtype=np.float32)


class SimpleGAPCNN(nn.Module):
    """Attribute names match the runner's node names, so its checkpoint is this
    module's state_dict."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.dropout = nn.Dropout(0.25)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)   # 28 -> 14
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)   # 14 -> 7
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)   # 7 -> 3 (floor)
        x = x.mean(dim=(2, 3))                       # global average pool: 128 features
        return self.fc(self.dropout(x))


def read_idx(path):
    """An IDX file, raw or gzip (told apart by the first two bytes)."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic = int.from_bytes(raw[0:4], "big")
    ndim = magic & 0xff
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def colourise(grey, colours, rng, threshold=50, lo=0.4, hi=1.0):
    """SPEC.md Task 0: strokes (> threshold) white; background uint8(noise *
    colour) with one U(lo, hi) noise per pixel shared by the 3 channels."""
    n, h, w = grey.shape
    noise = rng.uniform(lo, hi, size=(n, 1, h, w)).astype(np.float32)
    rgb = PALETTE[colours][:, :, None, None]                   # (n, 3, 1, 1)
    img = (noise * rgb).astype(np.uint8)                       # (n, 3, h, w)
    fg = (grey > threshold)[:, None, :, :]
    return np.where(fg, np.uint8(255), img)


def make_data(mnist_dir, seed, bias=0.95, val_fraction=0.1):
    rng = np.random.default_rng(seed)
    tr_x = read_idx(os.path.join(mnist_dir, "train-images-idx3-ubyte"))
    tr_y = read_idx(os.path.join(mnist_dir, "train-labels-idx1-ubyte")).astype(np.int64)
    te_x = read_idx(os.path.join(mnist_dir, "t10k-images-idx3-ubyte"))
    te_y = read_idx(os.path.join(mnist_dir, "t10k-labels-idx1-ubyte")).astype(np.int64)
    # easy: the label's colour with p = bias, else uniform over all 10
    easy_c = np.where(rng.random(len(tr_y)) < bias, tr_y, rng.integers(0, 10, len(tr_y)))
    # hard: uniform over the 9 colours that are not the label's
    hard_c = (te_y + rng.integers(1, 10, len(te_y))) % 10
    easy = colourise(tr_x, easy_c, rng)
    hard = colourise(te_x, hard_c, rng)
    perm = rng.permutation(len(tr_y))
    n_val = int(round(len(tr_y) * val_fraction))
    val_i, train_i = perm[:n_val], perm[n_val:]
    as_float = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0)
    return {
        "train": (as_float(easy[train_i]), torch.from_numpy(tr_y[train_i])),
        "val": (as_float(easy[val_i]), torch.from_numpy(tr_y[val_i])),
        "test": (as_float(hard), torch.from_numpy(te_y)),
    }


def flops_per_image(model):
    """2 x multiply-adds of every Conv2d and Linear for one image (forward),
    and for one training step (forward + dW + dx, no dx for the layer that
    reads the image) - the same count bench_train prints."""
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
    train = 3 * fwd - 2.0 * macs[0]
    return fwd, train


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def accuracy(model, x, y, bs=256):
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(y), bs):
            correct += (model(x[s:s + bs]).argmax(1) == y[s:s + bs]).sum().item()
    return correct / len(y)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mnist", default="data/mnist")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--eval-batch", type=int, default=256)
    ap.add_argument("--train-limit", type=int, default=0, help="train on the first K images only (smoke test)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--epochs", type=int, default=1, help="timed epochs (the first of several warms up)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    data = make_data(a.mnist, a.seed)
    t_data = time.perf_counter() - t0
    if a.train_limit > 0:
        data["train"] = tuple(t[:a.train_limit] for t in data["train"])
    if a.device == "cuda":
        data = {k: (x.cuda(), y.cuda()) for k, (x, y) in data.items()}
    xtr, ytr = data["train"]
    xte, yte = data["test"]

    model = SimpleGAPCNN()
    fwd_flop, train_flop = flops_per_image(model)
    model = model.to(a.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    where = (f"{torch.cuda.get_device_name()} cuDNN {torch.backends.cudnn.version()}"
             if a.device == "cuda" else f"mkldnn {torch.backends.mkldnn.is_available()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {where}; "
          f"{len(ytr)} train / {len(yte)} test images, data {t_data:.2f} s")
    print(f"forward {fwd_flop / 1e6:.2f} MFLOP/image; training step {train_flop / 1e6:.2f} "
          f"MFLOP/image; 1 epoch = {train_flop * len(ytr) / 1e12:.3f} TFLOP")

    # (a) one training epoch, indexing batches out of the in-memory tensor
    model.train()
    epoch_times = []
    for epoch in range(a.epochs):
        perm = torch.randperm(len(ytr), device=a.device)
        sync(a.device)
        t0 = time.perf_counter()
        for s in range(0, len(ytr), a.batch):
            idx = perm[s:s + a.batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(a.device)
        epoch_times.append(time.perf_counter() - t0)
    # several epochs: the first pays cuDNN's and the allocator's warm-up
    t_train = min(epoch_times[1:]) if len(epoch_times) > 1 else epoch_times[0]
    train_ips = len(ytr) / t_train

    # (b) evaluation throughput: forward only, batch 256
    model.eval()
    times = []
    with torch.no_grad():
        for rep in range(a.repeats + 1):          # the first pass warms up
            sync(a.device)
            t0 = time.perf_counter()
            for s in range(0, len(yte), a.eval_batch):
                model(xte[s:s + a.eval_batch])
            sync(a.device)
            if rep > 0:
                times.append(time.perf_counter() - t0)
    t_eval = statistics.median(times)
    eval_ips = len(yte) / t_eval

    print(f"{'work':34s} {'images':>8s} {'seconds':>9s} {'images/s':>10s} {'GFLOP/s':>9s}")
    print(f"{'train epoch (batch 64)':34s} {len(ytr):8d} {t_train:9.2f} {train_ips:10.0f} "
          f"{train_ips * train_flop / 1e9:9.1f}")
    print(f"{'eval forward (batch 256)':34s} {len(yte):8d} {t_eval:9.3f} {eval_ips:10.0f} "
          f"{eval_ips * fwd_flop / 1e9:9.1f}   (median of {a.repeats})")
    for name in ("train", "val", "test"):
        x, y = data[name]
        label = {"train": "easy", "val": "easy", "test": "hard"}[name]
        print(f"  after training: {name:5s} ({label}) accuracy {100 * accuracy(model, x, y):6.2f}%")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"peak RSS {rss:.1f} MiB (data held as float32)")
    print(f"RESULT train_ips={train_ips:.1f} eval_ips={eval_ips:.1f} peak_rss_mib={rss:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
