#!/usr/bin/env python3
"""make_demo_run.py - a run directory with plausible data for every figure, from real MNIST.

Lets you work on plots/*.gp without training anything:

    /usr/bin/python3 scripts/make_demo_run.py   # a python3 with numpy + h5py /tmp/demo --mnist /tmp/mnist/package/data --epochs 10
    runner plot /tmp/demo            # or any program calling rn_plot_run

It writes /tmp/demo/run.h5 in the layout of runner/results.h: training curves (per step and
per epoch), confusion matrices, sample grids (coloured train, grey test with predictions),
a "red 1" probe and colour statistics. Images are coloured as in SPEC.md (white stroke,
background uint8(noise * colour), noise ~ U(0.4, 1.0)); the numbers are made up.
"""
import argparse
import os

import h5py
import numpy as np

PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255),
           (255, 0, 255), (255, 128, 0), (0, 0, 0), (128, 0, 255), (139, 69, 19)]


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic == 0x803:
        n, h, w = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
        return np.frombuffer(data, np.uint8, n * h * w, 16).reshape(n, h, w)
    n = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data, np.uint8, n, 8)


def colourise(grey, colour, rng):
    noise = rng.uniform(0.4, 1.0, grey.shape)
    out = np.empty((3,) + grey.shape, np.uint8)
    for c in range(3):
        out[c] = np.where(grey > 50, 255, (noise * PALETTE[colour][c]).astype(np.uint8))
    return out


def attr_str(obj, name, value):
    obj.attrs.create(name, value, dtype=h5py.string_dtype("utf-8"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--mnist", default="/tmp/mnist/package/data")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps-per-epoch", type=int, default=422)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    images = read_idx(os.path.join(a.mnist, "t10k-images-idx3-ubyte"))
    labels = read_idx(os.path.join(a.mnist, "t10k-labels-idx1-ubyte")).astype(np.int32)
    os.makedirs(a.run_dir, exist_ok=True)

    with h5py.File(os.path.join(a.run_dir, "run.h5"), "w") as f:
        attr_str(f, "status", "completed")
        f.attrs["format_version"] = np.uint64(1)
        cfg = f.create_group("config")
        attr_str(cfg, "experiment", "demo_background_colour")

        m = f.create_group("metrics")
        m.attrs["steps_per_epoch"] = np.uint64(a.steps_per_epoch)
        steps = np.arange(10, a.epochs * a.steps_per_epoch + 1, 10, dtype=np.float64)
        loss = 2.3 * np.exp(-steps / 150) + 0.05 + 0.08 * rng.random(steps.size)
        acc = np.clip(1 - 0.9 * np.exp(-steps / 120) - 0.03 * rng.random(steps.size), 0, 1)
        epochs = np.arange(1, a.epochs + 1, dtype=np.float64)
        series = {
            "train/loss": (steps, loss, "step"), "train/accuracy": (steps, acc, "step"),
            "val/loss": (epochs, 0.12 / epochs ** 0.5, "epoch"),
            "val/accuracy": (epochs, 0.97 + 0.02 * (1 - 1 / epochs), "epoch"),
            "test/loss": (epochs, 2.5 + 0.1 * epochs, "epoch"),
            "test/accuracy": (epochs, 0.45 - 0.01 * epochs, "epoch"),
        }
        for name, (x, v, xl) in series.items():
            d = m.create_dataset(name, data=np.stack([x, v], 1), maxshape=(None, 2),
                                 chunks=(512, 2))
            attr_str(d, "x_label", xl)

        an = f.create_group("analyses")
        conf = an.create_group("confusion")
        attr_str(conf, "kind", "confusion")
        for split, diag in (("val", 0.98), ("test", 0.45)):
            cm = rng.integers(0, 40 if split == "test" else 4, (10, 10)).astype(np.int32)
            counts = np.bincount(labels, minlength=10)
            cm[np.arange(10), np.arange(10)] = (counts * diag).astype(np.int32)
            conf.create_dataset(split, data=cm)

        smp = an.create_group("samples")
        attr_str(smp, "kind", "samples")
        n = 20
        cols = np.array([(l if rng.random() < 0.9 else rng.integers(10)) for l in labels[:n]])
        rgb = np.stack([colourise(images[i], cols[i], rng) for i in range(n)])
        g = smp.create_group("train")
        g["images"], g["labels"], g["colours"] = rgb, labels[:n], cols.astype(np.int32)
        g = smp.create_group("test")
        cols = np.array([(l + 1 + rng.integers(9)) % 10 for l in labels[n:2 * n]])
        g["images"] = np.stack([colourise(images[n + i], cols[i], rng) for i in range(n)])
        g["labels"], g["colours"] = labels[n:2 * n], cols.astype(np.int32)
        g["preds"] = np.where(rng.random(n) < 0.5, cols, labels[n:2 * n]).astype(np.int32)
        g = smp.create_group("grey")
        g["images"] = images[:12, None, :, :]
        g["labels"] = labels[:12]
        g["colours"] = np.full(12, 255, np.int32)

        one = int(np.nonzero(labels == 1)[0][0])
        p = an.create_group("probe_red_1")
        attr_str(p, "kind", "probe")
        attr_str(p, "title", "digit 1 on red")
        p.attrs["label"], p.attrs["pred"] = np.uint64(1), np.uint64(0)
        p["image"] = colourise(images[one], 0, rng)
        probs = np.array([0.87, 0.05, 0.01, 0.01, 0.02, 0.01, 0.01, 0.01, 0.005, 0.005])
        p["probs"] = probs.astype(np.float32)

        cs = an.create_group("colour_stats")
        attr_str(cs, "kind", "colour_stats")
        st = rng.integers(40, 80, (10, 10)).astype(np.int32)
        st[np.arange(10), np.arange(10)] = 5300
        cs["train"] = st
    print(os.path.join(a.run_dir, "run.h5"))


if __name__ == "__main__":
    main()
