#!/usr/bin/env python3
"""make-fixture.py - writes tests/fixtures/mnist/: the first 1000 MNIST train
images+labels and the first 300 test images+labels as gzip-compressed IDX
files with the standard names.

usage: scripts/make-fixture.py [MNIST_DIR] [OUT_DIR]
       (defaults: data/mnist and tests/fixtures/mnist under the repo root;
        run scripts/fetch-mnist.sh first)

gzip headers carry no name and mtime 0, so reruns give identical bytes.
"""
import gzip
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "data", "mnist")
DST = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tests", "fixtures", "mnist")
FILES = [("train-images-idx3-ubyte", 1000), ("train-labels-idx1-ubyte", 1000),
         ("t10k-images-idx3-ubyte", 300), ("t10k-labels-idx1-ubyte", 300)]


def first_k(raw, k):
    magic, = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    dims = list(struct.unpack(">%dI" % ndim, raw[4:4 + 4 * ndim]))
    item = 1
    for d in dims[1:]:
        item *= d
    assert dims[0] >= k, "source has only %d items" % dims[0]
    dims[0] = k
    body = raw[4 + 4 * ndim:4 + 4 * ndim + k * item]
    return struct.pack(">I", magic) + struct.pack(">%dI" % ndim, *dims) + body


os.makedirs(DST, exist_ok=True)
for name, k in FILES:
    with open(os.path.join(SRC, name), "rb") as f:
        data = first_k(f.read(), k)
    out = os.path.join(DST, name + ".gz")
    with open(out, "wb") as raw_out:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw_out, mtime=0, compresslevel=9) as g:
            g.write(data)
    print("%s: %d items, %d bytes" % (out, k, os.path.getsize(out)))
