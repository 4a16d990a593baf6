#!/usr/bin/python3
"""PyTorch side of the attack speed comparison: the study's epsilon sweep
(targeted L-inf PGD, 15 epsilons x 200 iterations, step eps/10) on the image
and with the weights bench_attack used, eager mode, on the CPU.

Reads the file `bench_attack --out FILE` wrote: /image (3, 28, 28) float32
(the exact pixels the runner attacked), /eps, the attributes steps, step_rel
and target, /models/<model>/ (the weights, a PyTorch state_dict), and the
runner's final probabilities /<model>/probs_batched (15, 10), which the
results here are compared with.

Each step, as the runner's (runner/pgd.h) and the study's: x - step *
sign(grad CE(model(x), target)), projection onto the eps-ball around the
source, clamp to [0, 1]; the model in eval mode. Variants timed per model:
  study          one 200-iteration attack per epsilon, batch 1, gradient by
                 loss.backward() with the model's parameters requiring grad
                 (the study's code: the weight gradients are computed too,
                 as the runner's backward does)
  batched        all epsilons as one batch of 15, loss.backward() as above
  batched_xonly  the same batch, torch.autograd.grad(loss, x): no weight
                 gradients (PyTorch's best case, for reference)
The loss of a batch is the sum of the per-image CEs, so each image's gradient
is its own (its sign is all a step uses).

usage: bench/torch_attack.py FILE [--threads N]     (iterations: the file's)
Prints per model each variant's seconds and the largest |P(target) - the
runner's| over the epsilons, and one line
  RESULT model=NAME study_s=... batched_s=... batched_xonly_s=... dp_study=... dp_batched=...
Needs Debian's python3-torch and python3-h5py: run with /usr/bin/python3.
"""
import argparse
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class SimpleGAPCNN(nn.Module):
    """experiments/models/simple_gap_cnn.yaml (bench/torch_simple_gap_cnn.py);
    with heads=True also simple_gap_cnn_heads_nogrl.yaml's colour head, which
    is loaded (strict state_dict) but never run: the attack reads `fc`."""

    def __init__(self, heads=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.dropout = nn.Dropout(0.25)
        self.fc = nn.Linear(128, 10)
        if heads:
            self.colour_fc1 = nn.Linear(128, 128)
            self.colour_bn1 = nn.BatchNorm1d(128)
            self.colour_drop = nn.Dropout(0.3)
            self.colour_fc2 = nn.Linear(128, 64)
            self.colour_bn2 = nn.BatchNorm1d(64)
            self.colour_out = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)   # 28 -> 14
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)   # 14 -> 7
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)   # 7 -> 3 (floor)
        x = x.mean(dim=(2, 3))                       # global average pool: 128 features
        return self.fc(self.dropout(x))              # the digit logits


def load_model(f, name):
    g = f["models/" + name]
    state = {k: torch.from_numpy(np.asarray(v[()])) for k, v in g.items()}
    model = SimpleGAPCNN(heads=any(k.startswith("colour_") for k in state))
    model.load_state_dict(state, strict=True)
    return model.eval()


def pgd(model, src, eps, step, target, steps, xonly):
    """Targeted L-inf PGD on a batch: src (m, 3, 28, 28), eps and step (m, 1,
    1, 1) float32. Returns the adversarial images."""
    x = src.clone()
    lo, hi = src - eps, src + eps
    y = torch.full((len(src),), target, dtype=torch.long)
    for _ in range(steps):
        x.requires_grad_(True)
        loss = F.cross_entropy(model(x), y, reduction="sum")
        if xonly:
            (grad,) = torch.autograd.grad(loss, x)
        else:
            model.zero_grad(set_to_none=True)
            loss.backward()
            grad = x.grad
        with torch.no_grad():
            x = x - step * grad.sign()                 # descend CE(target)
            x = torch.min(torch.max(x, lo), hi).clamp_(0.0, 1.0)
    return x.detach()


def probs(model, x):
    with torch.no_grad():
        return torch.softmax(model(x), dim=1).numpy()


def run_study(model, src, eps, step, target, steps):
    """The study's way: one attack per epsilon, batch 1."""
    out = [pgd(model, src, eps[e:e + 1], step[e:e + 1], target, steps, False)
           for e in range(len(eps))]
    return torch.cat(out)


def timed(fn):
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", help="the HDF5 file bench_attack --out wrote")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    with h5py.File(a.file, "r") as f:
        image = torch.from_numpy(f["image"][()].astype(np.float32))[None]
        eps_np = f["eps"][()].astype(np.float32)
        steps = int(f.attrs["steps"])      # the runner's, so the results compare
        step_rel = np.float32(float(f.attrs["step_rel"]))
        target = int(f.attrs["target"])
        names = [n for n in ("lazy", "m4") if n in f]
        models = {n: load_model(f, n) for n in names}
        runner = {n: f[n + "/probs_batched"][()] for n in names}
        weights = {n: f[n].attrs.get("weights", "?") for n in names}
    n_eps = len(eps_np)
    # step and ball in float32, as the runner computes them (step_rel * eps)
    eps = torch.from_numpy(eps_np).view(-1, 1, 1, 1)
    step = torch.from_numpy(step_rel * eps_np).view(-1, 1, 1, 1)
    src = image.expand(n_eps, -1, -1, -1).contiguous()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mkldnn "
          f"{torch.backends.mkldnn.is_available()}; {n_eps} epsilons x {steps} iterations, "
          f"target {target}")

    for name in names:
        model = models[name]
        w = weights[name].decode() if isinstance(weights[name], bytes) else str(weights[name])
        # warm-up: both batch shapes, both gradient paths
        pgd(model, image, eps[-1:], step[-1:], target, 3, False)
        pgd(model, src, eps, step, target, 3, False)
        pgd(model, src, eps, step, target, 3, True)
        t_study, x_study = timed(lambda: run_study(model, image, eps, step, target, steps))
        t_batched, x_batched = timed(lambda: pgd(model, src, eps, step, target, steps, False))
        t_xonly, x_xonly = timed(lambda: pgd(model, src, eps, step, target, steps, True))
        p_study, p_batched, p_xonly = (probs(model, x) for x in (x_study, x_batched, x_xonly))
        r = runner[name][:, target]
        d_study = float(np.abs(p_study[:, target] - r).max())
        d_batched = float(np.abs(p_batched[:, target] - r).max())
        linf = (x_batched - src).flatten(1).abs().max(1).values.numpy()
        viol = max(float((linf - eps_np).max()), float(-x_batched.min()),
                   float(x_batched.max() - 1), 0.0)
        print(f"== {name} ({w}): logits fc")
        print(f"   {'eps':8s} {'P(3) runner':>12s} {'P(3) study':>12s} {'P(3) batched':>12s} "
              f"{'|x-src|_inf':>12s}")
        for e in range(n_eps):
            print(f"   {eps_np[e]:<8g} {r[e]:12.6f} {p_study[e, target]:12.6f} "
                  f"{p_batched[e, target]:12.6f} {linf[e]:12.7f}")
        print(f"   {'study (batch 1, one attack per eps)':38s} {t_study:8.3f} s "
              f"({t_study / n_eps:.3f} s per attack)")
        print(f"   {f'batched (batch {n_eps})':38s} {t_batched:8.3f} s")
        print(f"   {'batched, autograd.grad (no dW)':38s} {t_xonly:8.3f} s")
        print(f"   largest |P({target}) - runner's|: study {d_study:.2e}, batched {d_batched:.2e} "
              f"(sign() of tiny gradients may differ: reported, not asserted)")
        print(f"   largest violation of the ball or [0, 1] (batched): {viol:.1e}")
        print(f"RESULT model={name} study_s={t_study:.4f} batched_s={t_batched:.4f} "
              f"batched_xonly_s={t_xonly:.4f} dp_study={d_study:.3e} dp_batched={d_batched:.3e}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
