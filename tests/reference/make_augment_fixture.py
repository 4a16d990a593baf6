#!/usr/bin/python3
"""Reference outputs of torchvision's colour adjustments for test_augment.c.

Applies torchvision.transforms.functional.adjust_brightness / adjust_contrast /
adjust_saturation / adjust_hue (the float-tensor code path that ColorJitter
uses) with fixed factors to a few 3x28x28 images and writes
tests/fixtures/augment_ref.h5:

  /input                      float32 (n, 3, 28, 28) in [0, 1]
  /<op>/factors               float32 (k,)   op in brightness, contrast,
                                             saturation, hue
  /<op>/output                float32 (k, n, 3, 28, 28)

The images are chosen to hit the branches of _rgb2hsv: image 0 is uniform
noise; image 1 is quantised to multiples of 1/8 so that channels tie (max
reached by two channels, grey pixels with max == min) and 0/1 values occur;
image 2 is a coloured-MNIST-like picture (a saturated stroke on a noisy
coloured background).

usage: /usr/bin/python3 tests/reference/make_augment_fixture.py [OUT.h5]
Needs Debian's python3-torchvision (0.14) and python3-h5py; the C test only
reads the committed file.
"""
import os
import sys

import h5py
import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F

FACTORS = {
    "brightness": [0.7, 1.3],
    "contrast": [0.7, 1.45],
    "saturation": [0.5, 1.5],
    "hue": [0.25, -0.4, 0.5],
}
ADJUST = {
    "brightness": F.adjust_brightness,
    "contrast": F.adjust_contrast,
    "saturation": F.adjust_saturation,
    "hue": F.adjust_hue,
}


def images():
    g = torch.Generator().manual_seed(1234)
    noise = torch.rand(3, 28, 28, generator=g)
    quant = torch.floor(torch.rand(3, 28, 28, generator=g) * 9.0) / 8.0
    quant[:, :4, :] = quant[0:1, :4, :]  # grey rows: max == min
    yy, xx = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")
    stroke = ((xx - 14) ** 2 + (yy - 14) ** 2 - 64).abs() < 20
    bg = torch.tensor([0.9, 0.2, 0.1]).view(3, 1, 1) * (0.4 + 0.6 * torch.rand(1, 28, 28, generator=g))
    mnist = torch.where(stroke.unsqueeze(0), torch.ones(3, 28, 28), bg)
    return torch.stack([noise, quant, mnist]).to(torch.float32)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "fixtures", "augment_ref.h5")
    x = images()
    with h5py.File(out, "w") as f:
        f.attrs["torchvision"] = torchvision.__version__
        f.create_dataset("input", data=x.numpy(), compression="gzip", shuffle=True)
        for op, fs in FACTORS.items():
            outs = torch.stack([torch.stack([ADJUST[op](img, fac) for img in x]) for fac in fs])
            g = f.create_group(op)
            g.create_dataset("factors", data=np.array(fs, dtype=np.float32))
            g.create_dataset("output", data=outs.numpy().astype(np.float32),
                             compression="gzip", shuffle=True)
    print("wrote", out)


if __name__ == "__main__":
    main()
