#!/usr/bin/python3
"""Interop check: a runner checkpoint is a PyTorch state_dict.

Loading a checkpoint into PyTorch takes three lines (model = the nn.Module
whose attribute names match the spec's layer names, e.g. SimpleGAPCNN below):

    with h5py.File("results/task1_lazy/latest/run.h5", "r") as f:
        state = {k: torch.from_numpy(np.asarray(v[()])) for k, v in f["models/main"].items()}
    model.load_state_dict(state, strict=True)

(np.asarray turns the int64 scalar num_batches_tracked of batchnorm models
into a 0-d array; for SimpleGAPCNN v[()] alone is enough.)

This script takes the run.h5 of a task1_lazy run (`runner
experiments/task1_lazy.yaml --out DIR`), loads /models/main that way into
SimpleGAPCNN, and checks, without recolouring anything, that PyTorch agrees
with the runner on what the runner stored:
  - /analyses/samples/test/images (uint8, n,3,28,28) / 255 through the model
    in eval mode: the argmax equals /analyses/samples/test/preds for every image;
  - /analyses/red1/image (uint8, 3,28,28): softmax equals /analyses/red1/probs
    within 1e-4.
Prints PASS or FAIL lines; exits 1 on any failure, 2 on unusable input.

usage: tests/reference/load_checkpoint.py RUN_H5_OR_DIR
Needs Debian's python3-torch and python3-h5py (run with /usr/bin/python3).
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PROB_TOL = 1e-4
# Softmax gaps below this are ties that float summation order may break
# either way; a differing argmax there is not a disagreement about the model.
TIE_TOL = 1e-5


class SimpleGAPCNN(nn.Module):
    """experiments/models/simple_gap_cnn.yaml; attribute names are the
    runner's node names, so its /models/main is this module's state_dict."""

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
        x = x.mean(dim=(2, 3))                       # global average pool
        return self.fc(self.dropout(x))


def main(argv):
    if len(argv) != 2:
        print("usage: load_checkpoint.py RUN_H5_OR_DIR", file=sys.stderr)
        return 2
    path = argv[1]
    if os.path.isdir(path):
        path = os.path.join(path, "run.h5")
    failures = 0

    def report(ok, what):
        nonlocal failures
        print(("PASS " if ok else "FAIL ") + what)
        failures += not ok

    with h5py.File(path, "r") as f:
        for need in ("models/main", "analyses/samples/test/images", "analyses/samples/test/preds",
                     "analyses/red1/image", "analyses/red1/probs"):
            if need not in f:
                print(f"{path}: no /{need}; is this a task1_lazy run with its analyses?",
                      file=sys.stderr)
                return 2
        arch = f["models/main"].attrs.get("architecture", b"")
        arch = arch.decode() if isinstance(arch, bytes) else str(arch)
        if arch and arch != "simple_gap_cnn":
            print(f"{path}: /models/main is a '{arch}', this check knows simple_gap_cnn",
                  file=sys.stderr)
            return 2
        state = {k: torch.from_numpy(np.asarray(v[()])) for k, v in f["models/main"].items()}
        images = f["analyses/samples/test/images"][()]
        preds = f["analyses/samples/test/preds"][()].astype(np.int64)
        red1 = f["analyses/red1/image"][()]
        red1_probs = f["analyses/red1/probs"][()]
        red1_pred = f["analyses/red1"].attrs.get("pred")

    model = SimpleGAPCNN()
    try:
        model.load_state_dict(state, strict=True)
        report(True, f"load_state_dict(strict=True): {len(state)} tensors "
                     f"({', '.join(sorted(state))})")
    except RuntimeError as e:
        report(False, f"load_state_dict(strict=True): {e}")
        return 1
    model.eval()

    with torch.no_grad():
        x = torch.from_numpy(images.astype(np.float32) / 255.0)
        p = torch.softmax(model(x), dim=1).numpy()
    torch_pred = p.argmax(1)
    top2 = np.sort(p, axis=1)[:, -2:]
    differ = np.nonzero(torch_pred != preds)[0]
    real = [i for i in differ if top2[i, 1] - top2[i, 0] > TIE_TOL]
    report(not real and images.shape[0] == preds.shape[0] and images.shape[1:] == (3, 28, 28),
           f"samples/test: argmax agrees on {images.shape[0] - len(differ)}/{images.shape[0]} "
           f"images {images.shape}"
           + (f"; differ on {[int(i) for i in differ]}, of which near-ties (top-2 gap <= "
              f"{TIE_TOL}): {[int(i) for i in differ if i not in real]}" if differ.size else ""))
    for i in real:
        print(f"     image {i}: runner {preds[i]}, torch {torch_pred[i]} (p = {np.round(p[i], 4)})")

    with torch.no_grad():
        xr = torch.from_numpy(red1.astype(np.float32)[None] / 255.0)
        pr = torch.softmax(model(xr), dim=1).numpy()[0]
    diff = float(np.abs(pr - red1_probs).max())
    report(diff <= PROB_TOL and red1.shape == (3, 28, 28),
           f"red1 probe: max |p_torch - p_runner| = {diff:.2e} (tol {PROB_TOL}); "
           f"torch predicts {pr.argmax()} (p = {pr.max():.4f}), runner stored pred {red1_pred}")

    print("PASS" if failures == 0 else f"FAIL ({failures} check{'s' if failures > 1 else ''})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
