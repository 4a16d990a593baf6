#!/usr/bin/python3
"""PyTorch side of the SAE speed comparison: the study's recipe (SPEC.md
"Sparse autoencoder (Task 6)") in eager PyTorch on the CPU, on the data and
initial weights bench_sae wrote (`bench_sae --out FILE`): /x (n, d), /init/
{w_enc, b_enc, w_dec, b_dec}, attributes epochs, batch, l1, lr; and the
runner's per-epoch /runner/{fve, l0, loss} to compare with.

The recipe, as runner/sae.h and the study: c = ReLU(W_e (x - b_d) + b_e),
x^ = W_d c + b_d, loss = mean_b ||x - x^||^2 + l1 mean_b ||c||_1; after
backward the component of W_d's gradient along each column is removed;
torch.optim.Adam; each column of W_d divided by its norm. Each epoch a
torch.randperm shuffle (not the runner's PCG: the timing does not depend on
the order), batches of `batch`, the last one smaller. The loss, squared
error and L0 of every batch are accumulated (as the runner measures them).

usage: bench/torch_sae.py FILE [--threads N] [--epochs E]   (E: the file's)
Prints the first epochs' and the last epoch's metrics, and one line
  RESULT side=torch seconds=... per_epoch_s=... fve=... l0=... dfve=...
(dfve: last-epoch fve minus the runner's, when the runner's is in the file).
Needs Debian's python3-torch and python3-h5py: run with /usr/bin/python3.
"""
import argparse
import time

import h5py
import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with h5py.File(a.file, "r") as f:
        x = torch.from_numpy(f["x"][...])
        init = {k: torch.from_numpy(f["init"][k][...]) for k in ("w_enc", "b_enc", "w_dec", "b_dec")}
        epochs = a.epochs or int(float(f.attrs["epochs"]))
        batch = int(float(f.attrs["batch"]))
        l1 = float(f.attrs["l1"])
        lr = float(f.attrs["lr"])
        runner_fve = f["runner/fve"][...] if "runner/fve" in f else None
    n, d = x.shape
    w_enc, b_enc, w_dec, b_dec = (init[k].clone().requires_grad_(True)
                                  for k in ("w_enc", "b_enc", "w_dec", "b_dec"))
    opt = torch.optim.Adam([w_enc, b_enc, w_dec, b_dec], lr=lr)
    total_var = float(((x.double() - x.double().mean(0)) ** 2).sum())
    gen = torch.Generator().manual_seed(0)
    print(f"torch_sae: {n} x {d} -> {w_enc.shape[0]} features, relu, l1 {l1:g}, Adam {lr:g}, "
          f"batch {batch}, {epochs} epochs, {torch.get_num_threads()} threads, torch {torch.__version__}")
    t0 = time.perf_counter()
    fve = l0 = 0.0
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        s_err = torch.zeros((), dtype=torch.float64)
        s_l1 = torch.zeros((), dtype=torch.float64)
        s_nnz = torch.zeros((), dtype=torch.float64)
        for b0 in range(0, n, batch):
            xb = x[perm[b0:b0 + batch]]
            c = torch.relu((xb - b_dec) @ w_enc.T + b_enc)
            xhat = c @ w_dec.T + b_dec
            err = ((xhat - xb) ** 2).sum(1)
            l1t = c.abs().sum(1)
            loss = err.mean() + l1 * l1t.mean()
            opt.zero_grad()
            loss.backward()
            with torch.no_grad():
                g = w_dec.grad
                g -= (g * w_dec).sum(0, keepdim=True) / (w_dec * w_dec).sum(0, keepdim=True) * w_dec
            opt.step()
            with torch.no_grad():
                w_dec /= w_dec.norm(dim=0, keepdim=True)
                s_err += err.sum()
                s_l1 += l1t.sum()
                s_nnz += (c > 0).sum()
        fve = 1 - float(s_err) / total_var
        l0 = float(s_nnz) / n
        if epoch < 3 or epoch == epochs - 1:
            print(f"  epoch {epoch + 1:2d}: loss {(float(s_err) + l1 * float(s_l1)) / n:.6f} "
                  f"fve {fve:.6f} l0 {l0:.1f}")
    secs = time.perf_counter() - t0
    dfve = fve - runner_fve[epochs - 1] if runner_fve is not None and len(runner_fve) >= epochs else float("nan")
    print(f"RESULT side=torch seconds={secs:.3f} per_epoch_s={secs / max(epochs, 1):.4f} "
          f"fve={fve:.6f} l0={l0:.2f} dfve={dfve:.2e}")


if __name__ == "__main__":
    main()
