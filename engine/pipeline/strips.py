"""Full-size work in bounded memory: rows in strips, and coarse grids spread over them.

The tone and composite networks predict a transform on a coarse grid, not pixels; it is
applied to the full-size photo a strip of rows at a time, so a 50 MP photo never needs a
float copy of itself.
"""

from __future__ import annotations

import numpy as np

STRIP_ROWS = 256  # rows per strip at full size: bounds memory on 50 MP photos


def spread_grid(grid: np.ndarray, ys: np.ndarray, xs: np.ndarray, height: int, width: int):
    """A GxG grid spread bilinearly over a height x width image, sampled at rows `ys` and
    columns `xs` (pixel indices), with pixel centres placed as torch's
    interpolate(align_corners=False) places them in training."""

    def axis(index: np.ndarray, n_out: int, n_in: int) -> tuple[np.ndarray, ...]:
        pos = np.clip((index + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    x0, x1, fx = axis(xs, width, grid.shape[1])
    across = grid[:, x0] * (1 - fx) + grid[:, x1] * fx  # G x len(xs): cheap
    y0, y1, fy = axis(ys, height, grid.shape[0])
    return across[y0] * (1 - fy)[:, None] + across[y1] * fy[:, None]
