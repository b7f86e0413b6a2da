"""The generator contract (docs/ARCHITECTURE.md, "The model-card contract") and its model card.

A model is a folder holding `model.onnx` and `model.json`. The card names the ONNX file,
its sha256, the resolution and the tensor layouts; the engine refuses a model whose file or
shapes disagree with its card. Export writes cards through `ModelCard.save`, the runtime
reads them through `ModelCard.load`, so both sides agree by construction.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CARD_FILE = "model.json"
ONNX_FILE = "model.onnx"

# Channel order of the single NCHW input tensor. Image and colour are RGB in [-1, 1];
# mask, sketch and noise are single channels (mask/sketch in [0, 1], noise ~ N(0, 1)
# inside the mask and 0 elsewhere).
INPUT_CHANNELS: tuple[str, ...] = (
    "image_r",
    "image_g",
    "image_b",
    "mask",
    "sketch",
    "color_r",
    "color_g",
    "color_b",
    "noise",
)
OUTPUT_CHANNELS: tuple[str, ...] = ("r", "g", "b")
# The restore generator (sketchfill.tools.restore.infer): the edit generator's network with the
# face-structure prior where the edit tool has its guides: where the prior is known in the
# sketch's place, its RGB ([-1, 1], 0 where unknown) in the colour's.
RESTORE_CHANNELS: tuple[str, ...] = (
    "image_r",
    "image_g",
    "image_b",
    "mask",
    "prior_known",
    "prior_r",
    "prior_g",
    "prior_b",
    "noise",
)
INPUT_NAME = "input"
OUTPUT_NAME = "output"

# The tone tool's network (sketchfill.tools.tone.infer): a thumbnail in, a colour transform out.
TONE_LUT_SIZE = 256
TONE_OUTPUTS: tuple[str, ...] = ("lut", "gain")

# The composite tool's network (sketchfill.tools.composite.infer): target, face and mask in; a soft
# composite mask and a per-pixel affine colour transform (3 x 4) on a 1/4-size grid out.
COMPOSITE_INPUTS: tuple[str, ...] = ("target", "source", "mask")
COMPOSITE_OUTPUTS: tuple[str, ...] = ("alpha", "coeffs")
COMPOSITE_COEFFS = 12
COMPOSITE_STRIDE = 4


class ModelCardError(ValueError):
    """The card is missing, unreadable or does not describe a valid generator."""


@dataclass
class TensorSpec:
    name: str
    shape: list[int]
    channels: list[str]
    layout: str = "NCHW"
    dtype: str = "float32"


@dataclass
class ModelCard:
    name: str
    version: str
    resolution: int
    sha256: str
    onnx: str = ONNX_FILE
    task: str = "edit"
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    description: str = ""
    license: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_generator(
        cls, name: str, version: str, resolution: int, sha256: str, task: str = "edit", **kw: Any
    ):
        """A card with the edit generator's input and output specs (task "edit"), or the
        restore generator's (task "restore": same shapes, the prior's channels)."""
        channels = RESTORE_CHANNELS if task == "restore" else INPUT_CHANNELS
        return cls(
            name=name,
            version=version,
            resolution=resolution,
            sha256=sha256,
            task=task,
            inputs=[
                TensorSpec(INPUT_NAME, [1, len(channels), resolution, resolution], list(channels))
            ],
            outputs=[
                TensorSpec(
                    OUTPUT_NAME,
                    [1, len(OUTPUT_CHANNELS), resolution, resolution],
                    list(OUTPUT_CHANNELS),
                )
            ],
            **kw,
        )

    @classmethod
    def for_tone(cls, name: str, version: str, resolution: int, sha256: str, grid: int, **kw):
        """A card for the tone network: an RGB thumbnail in [0, 1]; out per-channel curves
        (3 x 256, values in [0, 1]) and a grid x grid map of log2 exposure gains."""
        rgb = ["r", "g", "b"]
        return cls(
            name=name,
            version=version,
            resolution=resolution,
            sha256=sha256,
            task="tone",
            inputs=[TensorSpec(INPUT_NAME, [1, 3, resolution, resolution], rgb)],
            outputs=[
                TensorSpec("lut", [1, 3, TONE_LUT_SIZE], rgb, layout="NCL"),
                TensorSpec("gain", [1, 1, grid, grid], ["log2_gain"]),
            ],
            **kw,
        )

    @classmethod
    def for_composite(cls, name: str, version: str, resolution: int, sha256: str, **kw):
        """A card for the composite network: target and face RGB in [0, 1] and the region
        mask in [0, 1]; out the composite mask and the colour transform's coefficients."""
        res, grid = resolution, resolution // COMPOSITE_STRIDE
        rgb = ["r", "g", "b"]
        coeffs = [f"{out}_{term}" for out in "rgb" for term in ("r", "g", "b", "1")]
        return cls(
            name=name,
            version=version,
            resolution=resolution,
            sha256=sha256,
            task="composite",
            inputs=[
                TensorSpec("target", [1, 3, res, res], rgb),
                TensorSpec("source", [1, 3, res, res], rgb),
                TensorSpec("mask", [1, 1, res, res], ["mask"]),
            ],
            outputs=[
                TensorSpec("alpha", [1, 1, res, res], ["alpha"]),
                TensorSpec("coeffs", [1, COMPOSITE_COEFFS, grid, grid], coeffs),
            ],
            **kw,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        try:
            known = {f for f in cls.__dataclass_fields__}
            kw = {k: v for k, v in data.items() if k in known}
            kw["inputs"] = [TensorSpec(**t) for t in data.get("inputs", [])]
            kw["outputs"] = [TensorSpec(**t) for t in data.get("outputs", [])]
            card = cls(**kw)
        except TypeError as exc:
            raise ModelCardError(f"model card has missing or unexpected fields: {exc}") from exc
        card.validate()
        return card

    def validate(self) -> None:
        if not isinstance(self.resolution, int) or not 16 <= self.resolution <= 4096:
            raise ModelCardError(f"model card resolution {self.resolution!r} is not sane")
        if len(self.sha256) != 64:
            raise ModelCardError("model card sha256 must be 64 hex digits")
        if self.task == "edit":
            self._check_edit_specs(INPUT_CHANNELS)
        elif self.task == "restore":
            self._check_edit_specs(RESTORE_CHANNELS)
        elif self.task == "tone":
            self._check_tone_specs()
        elif self.task == "composite":
            self._check_composite_specs()

    def _check_edit_specs(self, channels: tuple[str, ...]) -> None:
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise ModelCardError(f"an {self.task} generator has exactly one input and one output")
        res = self.resolution
        inp, out = self.inputs[0], self.outputs[0]
        if tuple(inp.channels) != channels:
            raise ModelCardError(
                f"input channels {inp.channels} differ from the contract {list(channels)}"
            )
        if tuple(out.channels) != OUTPUT_CHANNELS:
            raise ModelCardError(f"output channels {out.channels} are not {OUTPUT_CHANNELS}")
        if inp.shape != [1, len(channels), res, res]:
            raise ModelCardError(f"input shape {inp.shape} does not match resolution {res}")
        if out.shape != [1, len(OUTPUT_CHANNELS), res, res]:
            raise ModelCardError(f"output shape {out.shape} does not match resolution {res}")

    def _check_tone_specs(self) -> None:
        res = self.resolution
        if len(self.inputs) != 1 or self.inputs[0].shape != [1, 3, res, res]:
            raise ModelCardError(f"a tone network takes one [1, 3, {res}, {res}] thumbnail")
        names = tuple(t.name for t in self.outputs)
        if names != TONE_OUTPUTS:
            raise ModelCardError(f"tone outputs {list(names)} are not {list(TONE_OUTPUTS)}")
        lut, gain = self.outputs
        if lut.shape != [1, 3, TONE_LUT_SIZE]:
            raise ModelCardError(f"tone lut shape {lut.shape} is not [1, 3, {TONE_LUT_SIZE}]")
        if len(gain.shape) != 4 or gain.shape[:2] != [1, 1] or gain.shape[2] != gain.shape[3]:
            raise ModelCardError(f"tone gain shape {gain.shape} is not [1, 1, G, G]")

    def _check_composite_specs(self) -> None:
        res, grid = self.resolution, self.resolution // COMPOSITE_STRIDE
        if res % COMPOSITE_STRIDE:
            raise ModelCardError(f"a composite network's resolution is a multiple of 4, not {res}")
        want = {
            "target": [1, 3, res, res],
            "source": [1, 3, res, res],
            "mask": [1, 1, res, res],
            "alpha": [1, 1, res, res],
            "coeffs": [1, COMPOSITE_COEFFS, grid, grid],
        }
        for kind, names, specs in (
            ("inputs", COMPOSITE_INPUTS, self.inputs),
            ("outputs", COMPOSITE_OUTPUTS, self.outputs),
        ):
            if tuple(t.name for t in specs) != names:
                raise ModelCardError(
                    f"composite {kind} {[t.name for t in specs]} are not {list(names)}"
                )
            for t in specs:
                if t.shape != want[t.name]:
                    raise ModelCardError(
                        f"composite {t.name} shape {t.shape} is not {want[t.name]}"
                    )

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> ModelCard:
        path = Path(folder) / CARD_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:
            raise ModelCardError(f"cannot read model card {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelCardError(f"model card {path} is not a JSON object")
        return cls.from_dict(data)

    def save(self, folder: str | os.PathLike[str]) -> Path:
        self.validate()
        path = Path(folder) / CARD_FILE
        write_atomic(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode("utf-8"))
        return path


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write via a temporary file in the same folder and rename, so a killed process never
    leaves a half-written file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
