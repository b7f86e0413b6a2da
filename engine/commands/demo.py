"""`sketchfill demo`: the main job on the bundled portrait, written as a before/after PNG.

The portrait is NASA's public-domain photo of Eileen Collins (as shipped by scikit-image);
the mask, sketch and colour layers beside it are the project's own drawings. `--tone`
shows auto tone instead, on the portrait given a tone fault (`tone_fault`); `--composite`
shows the composite tool, the portrait's face relit as if from another shot (`face_layer`)
and pasted back over it, beside the three classic steps it replaces and the untouched
portrait. `--restore` shows the restore tool: a hand over one side of the face, removed
given only its mask, beside OpenCV's Telea and Navier-Stokes inpainting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..pipeline.images import demo_inputs, save_image
from ..pipeline.preprocess import EditInputs
from ..pipeline.result import EditError, apply_patch
from ..pipeline.runtime import ModelError, load_generator, load_model
from ..tools.composite.infer import DEFAULT_COMPOSITE_MODEL, run_composite
from ..tools.edit.infer import run_edit
from ..tools.restore.infer import DEFAULT_RESTORE_MODEL, run_restore
from ..tools.tone.infer import DEFAULT_TONE_MODEL, run_tone
from ..wire.protocol import Box

HELP = "edit the bundled portrait and write a before/after picture"
DEMO_SEED = 7


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="out/demo.png", help="PNG to write (%(default)s)")
    p.add_argument("--model", help="model folder or name (default: sketchfill-face)")
    p.add_argument("--seed", type=int, default=DEMO_SEED, help="noise seed (%(default)s)")
    p.add_argument(
        "--tone",
        action="store_true",
        help="show auto tone instead: the portrait dimmed, flattened and given a colour "
        "cast; the fixed algorithm; the tone model; the untouched portrait",
    )
    p.add_argument(
        "--composite",
        action="store_true",
        help="show the composite tool instead: the face relit and pasted back; Poisson "
        "blending; Reinhard colour transfer; the composite model",
    )
    p.add_argument(
        "--restore",
        action="store_true",
        help="show the restore tool instead: a hand over one side of the face removed "
        "given only its mask; Telea and Navier-Stokes inpainting; the restore model",
    )


def run(args: argparse.Namespace) -> int:
    if args.tone:
        return run_tone_demo(args)
    if args.composite:
        return run_composite_demo(args)
    if args.restore:
        return run_restore_demo(args)
    inputs = demo_inputs()
    try:
        model = load_generator(args.model)
    except ModelError as exc:
        print(f"sketchfill demo: {exc.message}", file=sys.stderr)
        return 3
    try:
        result = run_edit(model, inputs, args.seed, feather=2.0)
    except EditError as exc:
        print(f"sketchfill demo: {exc.message}", file=sys.stderr)
        return 1
    after = apply_patch(inputs.image, result)
    save_image(args.output, before_after(inputs, after, result.box))
    print(
        f"wrote {Path(args.output)} (model {model.card.name} {model.card.version}, "
        f"seed {result.seed})"
    )
    return 0


def guides_overlay(inputs: EditInputs) -> np.ndarray:
    """The photo as the user sees it while drawing: mask tinted, colour dabs, pen lines."""
    img = Image.fromarray(inputs.image, "RGBA")
    tint = Image.new("RGBA", img.size, (40, 200, 255, 0))
    tint.putalpha(Image.fromarray((inputs.regenerate * 110).astype(np.uint8), "L"))
    img = Image.alpha_composite(img, tint)
    if inputs.color is not None:
        img = Image.alpha_composite(img, Image.fromarray(inputs.color, "RGBA"))
    if inputs.sketch is not None:
        ink = Image.new("RGBA", img.size, (10, 10, 10, 0))
        ink.putalpha(Image.fromarray(inputs.sketch, "L"))
        img = Image.alpha_composite(img, ink)
    return np.asarray(img)


def before_after(inputs: EditInputs, after: np.ndarray, edited: Box) -> np.ndarray:
    """Three columns (before, guides, after): full size on top, the edit zoomed below."""
    panels = [inputs.image, guides_overlay(inputs), after]
    h, w = inputs.image.shape[:2]
    side = min(max(edited.width, edited.height) * 2, w, h)
    x = min(max(edited.x + edited.width // 2 - side // 2, 0), w - side)
    y = min(max(edited.y + edited.height // 2 - side // 2, 0), h - side)
    zoom = w  # the zoomed crop is as wide as a panel
    sheet = Image.new("RGBA", (3 * w + 20, h + zoom + 30), (255, 255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (panel, label) in enumerate(zip(panels, ("before", "mask, sketch, colour", "after"))):
        left = i * (w + 10)
        sheet.paste(Image.fromarray(panel, "RGBA"), (left, 0))
        crop = Image.fromarray(panel[y : y + side, x : x + side], "RGBA")
        sheet.paste(crop.resize((zoom, zoom), Image.Resampling.LANCZOS), (left, h + 10))
        draw.text((left + 4, h + zoom + 14), label, fill=(0, 0, 0, 255))
    return np.asarray(sheet)


def tone_fault(rgb: np.ndarray) -> np.ndarray:
    """A typical bad exposure: a stop under, flat, with a warm-green cast (uint8 RGB)."""
    x = rgb.astype(np.float32) / 255.0 * np.array([0.95, 0.9, 0.62], np.float32)
    x = 0.15 + 0.55 * x**1.15
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def run_tone_demo(args: argparse.Namespace) -> int:
    original = demo_inputs().image
    faulty = original.copy()
    faulty[..., :3] = tone_fault(original[..., :3])
    try:
        model = load_model(args.model or DEFAULT_TONE_MODEL, task="tone")
    except ModelError as exc:
        print(f"sketchfill demo: {exc.message}", file=sys.stderr)
        return 3
    fixed = run_tone(None, faulty).patch
    toned = run_tone(model, faulty).patch
    panels = [
        (faulty, "before"),
        (fixed, "fixed algorithm"),
        (toned, "auto tone"),
        (original, "untouched"),
    ]
    h, w = original.shape[:2]
    sheet = Image.new("RGBA", (4 * w + 30, h + 24), (255, 255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (panel, label) in enumerate(panels):
        sheet.paste(Image.fromarray(panel, "RGBA"), (i * (w + 10), 0))
        draw.text((i * (w + 10) + 4, h + 6), label, fill=(0, 0, 0, 255))
    zoomed_sheet(args.output, panels, FACE_ELLIPSE)
    print(f"wrote {Path(args.output)} (model {model.card.name} {model.card.version})")
    return 0


def zoomed_sheet(path: str, panels: list[tuple[np.ndarray, str]], ellipse) -> None:
    """The panels side by side, each cropped around `ellipse` (the face, with some of its
    surroundings) and zoomed 2x, labelled below."""
    cx, cy, ax, ay = ellipse
    side = 2 * max(ax, ay) + 80
    x, y = cx - side // 2, cy - side // 2
    zoom = 2 * side
    sheet = Image.new("RGBA", (len(panels) * (zoom + 10) - 10, zoom + 24), (255,) * 4)
    draw = ImageDraw.Draw(sheet)
    for i, (panel, label) in enumerate(panels):
        crop = Image.fromarray(panel[y : y + side, x : x + side], "RGBA")
        sheet.paste(crop.resize((zoom, zoom), Image.Resampling.LANCZOS), (i * (zoom + 10), 0))
        draw.text((i * (zoom + 10) + 4, zoom + 6), label, fill=(0, 0, 0, 255))
    save_image(path, np.asarray(sheet))


# Where the portrait's face is (ellipse centre and half-axes, in pixels of the 512 px photo).
FACE_ELLIPSE = (226, 120, 47, 60)


def face_layer(rgba: np.ndarray) -> np.ndarray:
    """The portrait's face as a separate layer, as if cut from another shot: cooler, a
    little darker, lit from the right, on transparency with a feathered oval edge."""
    h, w = rgba.shape[:2]
    x = rgba[..., :3].astype(np.float32) / 255.0 * np.array([0.78, 0.93, 1.15], np.float32)
    light = np.linspace(0.6, 1.25, w, dtype=np.float32)[None, :, None]
    x = np.clip(x**1.2 * light, 0, 1)
    cx, cy, ax, ay = FACE_ELLIPSE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
    alpha = np.clip((1.08 - d) / 0.16, 0, 1)
    layer = np.dstack([x * 255.0 + 0.5, alpha * 255.0 + 0.5])
    return np.clip(layer, 0, 255).astype(np.uint8)


def run_composite_demo(args: argparse.Namespace) -> int:
    photo = demo_inputs().image
    face = face_layer(photo)
    try:
        model = load_model(args.model or DEFAULT_COMPOSITE_MODEL, task="composite")
    except ModelError as exc:
        print(f"sketchfill demo: {exc.message}", file=sys.stderr)
        return 3
    try:  # the baselines need OpenCV (the train extra)
        panels = [
            (apply_patch(photo, run_composite(None, photo, face, method=method)), label)
            for method, label in (
                ("alpha paste", "face layer pasted"),
                ("poisson", "Poisson blending"),
                ("reinhard", "Reinhard colour transfer"),
            )
        ]
    except EditError as exc:
        print(f"sketchfill demo: {exc.message}", file=sys.stderr)
        return 1
    panels += [
        (apply_patch(photo, run_composite(model, photo, face)), "SketchFill composite"),
        (photo, "untouched portrait"),
    ]
    zoomed_sheet(args.output, panels, FACE_ELLIPSE)
    print(f"wrote {Path(args.output)} (model {model.card.name} {model.card.version})")
    return 0


def hand_over_face(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The portrait with a hand on the image-left cheek, two fingers across the eye, and
    that hand's mask (0/255): what a user marks before restoring."""
    h, w = rgba.shape[:2]
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    draw.ellipse((184, 120, 222, 162), fill=255)  # palm, on the cheek
    for x0, y0, x1, y1 in ((188, 88, 199, 132), (200, 86, 211, 130)):
        draw.rounded_rectangle((x0, y0, x1, y1), radius=5, fill=255)  # fingers over the eye
    hidden = np.asarray(mask)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    skin = np.stack([205 - 0.3 * (yy - 90), 160 - 0.35 * (yy - 90), 130 + 0 * xx], -1)
    shade = 1.0 - 0.25 * np.clip((xx - 184) / 40, 0, 1)[..., None]
    out = rgba.copy()
    on = hidden >= 128
    out[on, :3] = np.clip(skin * shade, 0, 255).astype(np.uint8)[on]
    return out, hidden


def run_restore_demo(args: argparse.Namespace) -> int:
    photo = demo_inputs().image
    occluded, mask = hand_over_face(photo)
    try:
        model = load_model(args.model or DEFAULT_RESTORE_MODEL, task="restore")
        restored = apply_patch(occluded, run_restore(model, occluded, mask, args.seed))
    except (ModelError, EditError) as exc:
        print(f"sketchfill demo: {exc.message}", file=sys.stderr)
        return 3 if isinstance(exc, ModelError) else 1
    panels = [(occluded, "a hand over the face (its mask is all the tool gets)")]
    try:  # the baselines need OpenCV (the train extra)
        for method, label in (("telea", "Telea inpainting"), ("ns", "Navier-Stokes inpainting")):
            panels.append(
                (apply_patch(occluded, run_restore(None, occluded, mask, method=method)), label)
            )
    except EditError as exc:
        print(f"sketchfill demo: baselines left out ({exc.message})", file=sys.stderr)
    panels += [(restored, "SketchFill restore"), (photo, "untouched portrait")]
    zoomed_sheet(args.output, panels, FACE_ELLIPSE)
    print(f"wrote {Path(args.output)} (model {model.card.name} {model.card.version})")
    return 0
