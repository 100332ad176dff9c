#!/usr/bin/env python3
"""Converts public-domain / CC0 photographs shipped with scikit-image into a small whitened-image file for the
predictive-coding receptive-field experiment (`neurotwin-predictive`, scenario `scenarios/pc_image_patches.toml`).

Run once (needs scikit-image, numpy, h5py; e.g. in a private venv):
    python3 -m venv .venv-skimage && .venv-skimage/bin/pip install scikit-image h5py
    .venv-skimage/bin/python scripts/convert_image_patches.py

For each photograph: grayscale in [0, 1], central square crop, 2x2 block-average downsampling, zero-phase
whitening with the Olshausen & Field (1997) filter R(f) = f exp(-(f / f0)^4), f0 = 0.4 x Nyquist-scaled size,
central crop to 128 x 128 (away from FFT wrap-around), and scaling to unit variance. Writes
data/images/natural_whitened.h5 with dataset `images` (n x 128 x 128, float32) and attributes naming the
sources and licences.
"""

import os

import h5py
import numpy as np
from skimage import color, data

# (scikit-image function, description, licence as stated in scikit-image's data docstrings)
SOURCES = [
    ("camera", "camera man (Lav Varshney)", "CC0"),
    ("astronaut", "astronaut Eileen Collins (NASA Great Images)", "public domain"),
    ("coffee", "coffee cup (Rachel Michetti)", "CC0"),
    ("chelsea", "Chelsea the cat (Stefan van der Walt)", "CC0"),
    ("grass", "grass (DeviantArt linolafett, Grass-01)", "CC0"),
]
OUT_SIZE = 128


def whiten(img: np.ndarray) -> np.ndarray:
    n = img.shape[0]
    img = img - img.mean()
    f = np.fft.fftfreq(n) * n
    fx, fy = np.meshgrid(f, f)
    rho = np.sqrt(fx * fx + fy * fy)
    f0 = 0.4 * n
    filt = rho * np.exp(-((rho / f0) ** 4))
    return np.real(np.fft.ifft2(np.fft.fft2(img) * filt))


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "data", "images", "natural_whitened.h5")
    images = []
    for name, _, _ in SOURCES:
        im = getattr(data, name)()
        if im.ndim == 3:
            im = color.rgb2gray(im[..., :3])
        else:
            im = im.astype(np.float64) / 255.0
        h, w = im.shape
        s = min(h, w) // 2 * 2
        y0, x0 = (h - s) // 2, (w - s) // 2
        im = im[y0 : y0 + s, x0 : x0 + s]
        im = im.reshape(s // 2, 2, s // 2, 2).mean(axis=(1, 3))
        wim = whiten(im)
        c = (wim.shape[0] - OUT_SIZE) // 2
        wim = wim[c : c + OUT_SIZE, c : c + OUT_SIZE]
        wim = wim / wim.std()
        images.append(wim.astype(np.float32))
    arr = np.stack(images)
    with h5py.File(out, "w") as f:
        d = f.create_dataset("images", data=arr)
        d.attrs["sources"] = "; ".join(f"{n}: {desc}, {lic}" for n, desc, lic in SOURCES)
        d.attrs["processing"] = (
            "grayscale, central square crop, 2x2 block average, Olshausen-Field whitening "
            "f*exp(-(f/f0)^4) with f0=0.4*N, central 128x128 crop, unit variance"
        )
        d.attrs["origin"] = "scikit-image sample data (skimage.data), see data/images/README.md"
    print(out, arr.shape, arr.dtype)


if __name__ == "__main__":
    main()
