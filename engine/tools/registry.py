"""What the engine does to pixels: one Tool per protocol operation.

A tool names the buffers it takes and how each host layer is read, the model task it runs
and the function that turns the decoded layers into a patch. The server checks, queues,
cancels and answers requests for every tool alike: `edit` (sketch and colour fill), `tone`
(auto tone), `composite` (a face from one layer onto the photo, harmonised) and `restore`
(what an occluder hides on a face, from a mask alone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..pipeline import layers
from ..pipeline.preprocess import EditInputs
from ..pipeline.result import EditResult, Progress
from ..pipeline.runtime import DEFAULT_MODEL, CancelToken, Model
from ..wire.protocol import Buffer
from .composite.infer import DEFAULT_COMPOSITE_MODEL, run_composite
from .edit.infer import run_edit
from .restore.infer import DEFAULT_RESTORE_MODEL, run_restore
from .tone.infer import DEFAULT_TONE_MODEL, run_tone


@dataclass(frozen=True)
class Slot:
    """One input buffer: the wire layouts it may arrive in and how its pixels are read."""

    layouts: tuple[str, ...]
    decode: Callable[[np.ndarray, str], np.ndarray]
    required: bool = False


@dataclass(frozen=True)
class Job:
    """A checked request, ready to run: its layers decoded, region-sized."""

    layers: dict[str, np.ndarray]
    seed: int
    feather: float
    margin: float
    progress: Progress
    cancel: CancelToken


@dataclass(frozen=True)
class Tool:
    op: str  # the protocol operation and the CLI subcommand
    task: str  # the model card's task
    default_model: str  # the model folder looked up when none is configured
    slots: dict[str, Slot]
    run: Callable[[Model, Job], EditResult]
    # The canvas context a client sends around the mask (client.edit_region), when it is
    # not the engine's --margin and the model's resolution.
    context: dict[str, float] | None = None

    def decode(self, buffers: dict[str, Buffer]) -> dict[str, np.ndarray]:
        out = {}
        for name, buf in buffers.items():
            raw = layers.as_array(buf.data, buf.width, buf.height, buf.layout)
            out[name] = self.slots[name].decode(raw, buf.layout)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            name: {"layouts": list(slot.layouts), "required": slot.required}
            for name, slot in self.slots.items()
        }


PHOTO = Slot(("RGBA", "BGRA", "RGB"), layers.to_rgba, required=True)
MASK = Slot(("L", "RGBA", "BGRA"), layers.mask_channel, required=True)
SELECTION = Slot(("L", "RGBA", "BGRA"), layers.mask_channel)  # soft: 0-255 weights
STROKES = Slot(("L", "RGBA", "BGRA"), layers.stroke_channel)
PAINT = Slot(("RGBA", "BGRA", "RGB"), layers.to_rgba)
FACE = Slot(("RGBA", "BGRA", "RGB"), layers.to_rgba, required=True)  # its alpha: where


def _edit(model: Model, job: Job) -> EditResult:
    get = job.layers.get
    inputs = EditInputs(job.layers["image"], job.layers["mask"], get("sketch"), get("color"))
    return run_edit(
        model,
        inputs,
        job.seed,
        job.feather,
        margin=job.margin,
        progress=job.progress,
        cancel=job.cancel,
    )


EDIT = Tool(
    op="edit",
    task="edit",
    default_model=DEFAULT_MODEL,
    slots={"image": PHOTO, "mask": MASK, "sketch": STROKES, "color": PAINT},
    run=_edit,
    # The engine frames the face the mask belongs to (faceframe.py): send the face, not just
    # the mask's surroundings (5x the mask's size, at least 2048 px or the whole canvas).
    context={"margin": 2.0, "min_side": 2048},
)


def _tone(model: Model, job: Job) -> EditResult:
    image, mask = job.layers["image"], job.layers.get("mask")
    return run_tone(model, image, mask, progress=job.progress, cancel=job.cancel)


TONE = Tool(
    op="tone",
    task="tone",
    default_model=DEFAULT_TONE_MODEL,
    slots={"image": PHOTO, "mask": SELECTION},
    run=_tone,
)


def _composite(model: Model, job: Job) -> EditResult:
    image, face, mask = job.layers["image"], job.layers["face"], job.layers.get("mask")
    return run_composite(model, image, face, mask, progress=job.progress, cancel=job.cancel)


COMPOSITE = Tool(
    op="composite",
    task="composite",
    default_model=DEFAULT_COMPOSITE_MODEL,
    slots={"image": PHOTO, "face": FACE, "mask": SELECTION},
    run=_composite,
)


def _restore(model: Model, job: Job) -> EditResult:
    image, mask = job.layers["image"], job.layers["mask"]
    return run_restore(
        model, image, mask, job.seed, job.feather, progress=job.progress, cancel=job.cancel
    )


RESTORE = Tool(
    op="restore",
    task="restore",
    default_model=DEFAULT_RESTORE_MODEL,
    slots={"image": PHOTO, "mask": MASK},
    run=_restore,
    # The face is found in what is sent: send well beyond the mask (5x its size, at least
    # 2048 px or the whole canvas), not just the edit tool's context.
    context={"margin": 2.0, "min_side": 2048},
)

TOOLS: dict[str, Tool] = {tool.op: tool for tool in (EDIT, TONE, COMPOSITE, RESTORE)}
