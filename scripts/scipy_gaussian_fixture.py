"""Writes a SciPy reference for the gaussian kernels: input and outputs as raw float32 files.

usage: scipy_gaussian_fixture.py OUTDIR
"""
import sys
import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d

out = sys.argv[1]
rng = np.random.default_rng(42)
x = rng.standard_normal((11, 17, 9)).astype(np.float32)
x.tofile(f"{out}/input.f32")
gaussian_filter(x, 1.5, mode="reflect", truncate=4).astype(np.float32).tofile(f"{out}/gaussian3d.f32")
for axis in range(3):
    gaussian_filter1d(x, 1.5, axis=axis, mode="reflect", truncate=4).astype(np.float32).tofile(f"{out}/gaussian1d_{axis}.f32")
# A radius larger than an axis (radius 6 > 5 cells): reflection past one period.
y = rng.standard_normal((5, 13)).astype(np.float32)
y.tofile(f"{out}/small.f32")
gaussian_filter(y, 1.5, mode="reflect", truncate=4).astype(np.float32).tofile(f"{out}/small_gaussian.f32")
