#!/usr/bin/python3
"""Compares two run.h5 files dataset by dataset, bitwise (the raw bytes of every
dataset), except the timings (train/epoch_seconds, train/images_per_second).

usage: scripts/h5-compare.py A.h5 B.h5   -> exit 0 when equal, 1 with the differences listed.
Needs h5py (/usr/bin/python3 has it)."""
import sys

import h5py
import numpy as np

TIMINGS = ("epoch_seconds", "images_per_second")


def datasets(f):
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and not any(t in name for t in TIMINGS):
            out[name] = obj

    f.visititems(visit)
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with h5py.File(sys.argv[1], "r") as fa, h5py.File(sys.argv[2], "r") as fb:
        a, b = datasets(fa), datasets(fb)
        diff = sorted(set(a) ^ set(b))
        for name in sorted(set(a) & set(b)):
            x, y = np.asarray(a[name][()]), np.asarray(b[name][()])
            if x.shape != y.shape or x.dtype != y.dtype or x.tobytes() != y.tobytes():
                diff.append(name)
        for name in diff:
            print("differs: %s" % name)
        print("%d datasets compared, %d differ" % (len(a), len(diff)))
        return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
