"""What SketchFill reads from a Krita document and what it adds to one.

Plain functions that take the Document explicitly (no widgets, no state): the docker, the
actions and the kritarunner tests all go through them. Pixels stay raw bytes from Krita to
the wire and back; the engine reads Krita's B,G,R,A as it is, so no per-pixel Python runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from krita import Krita

from .sketchfill_client import roles as shared
from .sketchfill_client.protocol import OP_EDIT, OP_RESTORE, Box
from .sketchfill_client.requests import CompositeRequest, EditRequest, RestoreRequest, ToneRequest

# The roles and the layer names each picks on its own are the shared client's, so Krita and
# GIMP pick the same layers (compared case-insensitively, spaces trimmed).
ROLES = shared.ROLES
ROLE_NAMES = shared.ROLE_NAMES
NOTHING_TO_REGENERATE = (
    "Nothing to regenerate: select the area to fill, or paint it on a layer named 'mask'."
)
LAYER_TYPES = (
    "paintlayer",
    "grouplayer",
    "vectorlayer",
    "filelayer",
    "clonelayer",
    "filllayer",
    "filterlayer",
)
# The wire's pixel format: Krita's own byte order for 8-bit RGBA documents.
WIRE_SPACE = ("RGBA", "U8", "")


class DocumentError(Exception):
    """Something about the document the user can fix; the text says how."""


@dataclass(frozen=True)
class Choice:
    """What the user picked for a role: "auto" (by layer name), "none", "selection", or
    "layer" with the layer's unique id."""

    kind: str
    layer_id: str = ""


AUTO = Choice("auto")
NONE = Choice("none")
SELECTION = Choice("selection")


@dataclass
class Roles:
    """The layers one edit reads. mask is None when the selection is the mask."""

    image: object
    sketch: object | None = None
    color: object | None = None
    mask: object | None = None


@dataclass
class FaceLayers:
    """What one composite reads: the face layer, the photo right below it, and the canvas
    rectangle to composite (the face's alpha > 0, or the selection's)."""

    face: object
    photo: object
    bbox: Box


@dataclass
class Patch:
    """8-bit B,G,R,A pixels to lay on the canvas at (x, y), made by `tool` (an engine op);
    seed None for the tools without one (auto tone, composite). Only edits are named for
    their seed; a restore keeps its seed for the history."""

    x: int
    y: int
    width: int
    height: int
    bgra: bytes
    seed: int | None
    tool: str = OP_EDIT

    def name(self) -> str:
        """The layer's name: "SF <seed> fill", "SF <seed> restore", "SF tone" or "SF
        composite", the seed first, where a narrow Layers panel does not cut it off."""
        seed = self.seed if self.tool in (OP_EDIT, OP_RESTORE) else None
        return shared.result_name(self.tool, seed)


def is_result(node) -> bool:
    return shared.is_result_name(node.name())


# -- layers ------------------------------------------------------------------------------


def node_id(node) -> str:
    return node.uniqueId().toString()


def layers(doc) -> list:
    """Every layer of the document, top to bottom as the Layers docker shows them (masks
    attached to layers are left out)."""
    found: list = []

    def walk(parent) -> None:
        for node in reversed(parent.childNodes()):  # childNodes() runs bottom to top
            if node.type() in LAYER_TYPES:
                found.append(node)
                walk(node)

    walk(doc.rootNode())
    return found


def find_layer(doc, layer_id: str):
    return next((n for n in layers(doc) if node_id(n) == layer_id), None)


def _named(candidates: list, role: str):
    return next((n for n in candidates if shared.is_role_name(role, n.name())), None)


def has_selection(doc) -> bool:
    sel = doc.selection()
    return sel is not None and sel.width() > 0 and sel.height() > 0


def resolve_roles(
    doc,
    choices: dict[str, Choice],
    *,
    need_mask: bool = True,
    need_guides: bool = False,
    nothing: str = NOTHING_TO_REGENERATE,
) -> Roles:
    """The layers for each role: the user's picks, else layers found by name. The image
    falls back to the lowest paint layer that has no other role and is not a result.
    need_mask=False finds the layers without asking for a mask (putting a result back);
    need_guides=True refuses a sketch or colour role left on Auto that finds no layer
    (Generate: a guide is never dropped without a word; None goes on without it);
    `nothing` is what to say when there is no mask at all."""
    candidates = layers(doc)
    picked: dict[str, object | None] = {}
    for role in ROLES:
        choice = choices.get(role, AUTO)
        if choice.kind == "layer":
            node = find_layer(doc, choice.layer_id)
            if node is None:
                raise DocumentError(
                    f"The layer picked as {role} is not in this document any more: pick it "
                    "again in the SketchFill panel."
                )
            picked[role] = node
        elif choice.kind == "auto" and not (role == "mask" and has_selection(doc)):
            picked[role] = _named(candidates, role)
        else:  # "none", or the selection as the mask
            picked[role] = None
    if need_mask and choices.get("mask", AUTO) == SELECTION and not has_selection(doc):
        raise DocumentError("The mask is set to the selection, but nothing is selected.")
    if need_mask and picked["mask"] is None and not has_selection(doc):
        raise DocumentError(nothing)
    for role in ("sketch", "color") if need_guides else ():
        if picked[role] is None and choices.get(role, AUTO) == AUTO:
            raise DocumentError(shared.missing_guide(role))
    if picked["image"] is None:
        taken = {node_id(n) for n in picked.values() if n is not None}
        paint = [
            n
            for n in candidates
            if n.type() == "paintlayer" and node_id(n) not in taken and not is_result(n)
        ]
        if not paint:
            raise DocumentError("No image layer: this document has no paint layer to edit.")
        picked["image"] = paint[-1]
    image_id = node_id(picked["image"])
    for role in ("sketch", "color", "mask"):
        node = picked[role]
        if node is not None and node_id(node) == image_id:
            raise DocumentError(
                f"The layer '{node.name()}' is both the image and the {role}: pick another."
            )
    return Roles(picked["image"], picked["sketch"], picked["color"], picked["mask"])


# -- reading -----------------------------------------------------------------------------


def is_wire_format(doc) -> bool:
    """Whether the document's layers already hold 8-bit B,G,R,A (nothing to convert)."""
    return doc.colorModel() == "RGBA" and doc.colorDepth() == "U8"


def _space(doc) -> tuple[str, str, str]:
    return (doc.colorModel(), doc.colorDepth(), doc.colorProfile())


def mask_bbox(doc, roles: Roles) -> Box:
    """The canvas rectangle holding the mask: the selection's, or the mask layer's extent."""
    if roles.mask is None:
        sel = doc.selection()
        x, y, w, h = sel.x(), sel.y(), sel.width(), sel.height()
    else:
        rect = roles.mask.bounds()
        x, y, w, h = rect.x(), rect.y(), rect.width(), rect.height()
    box = _on_canvas(doc, x, y, w, h)
    if box is None:
        raise DocumentError(
            "The mask is empty inside the canvas: select the area to regenerate, or paint it "
            "on the mask layer."
        )
    return box


def _on_canvas(doc, x: int, y: int, w: int, h: int) -> Box | None:
    """The part of the rectangle inside the canvas, or None."""
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, doc.width()), min(y + h, doc.height())
    return Box(x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None


def _convert(pixels: list[bytes], width: int, height: int, source, target) -> list[bytes]:
    """Pixel buffers from one colour space to another through a throwaway document, so
    Krita's colour management converts them and the user's document is never touched."""
    scratch = Krita.instance().createDocument(width, height, "SketchFill conversion", *source, 72.0)
    try:
        root = scratch.rootNode()
        nodes = []
        for data in pixels:
            node = scratch.createNode("pixels", "paintlayer")
            node.setPixelData(data, 0, 0, width, height)
            root.addChildNode(node, None)
            nodes.append(node)
        scratch.setColorSpace(*target)
        scratch.waitForDone()
        return [bytes(node.pixelData(0, 0, width, height)) for node in nodes]
    finally:
        scratch.close()


def read_bgra(doc, nodes: list, box: Box) -> list[bytes]:
    """Each node's pixels in box as 8-bit B,G,R,A, whatever the document's colour space.
    Projections, so a layer's own masks and a group's children count as shown."""
    raw = [bytes(n.projectionPixelData(box.x, box.y, box.width, box.height)) for n in nodes]
    if is_wire_format(doc):
        return raw
    return _convert(raw, box.width, box.height, _space(doc), WIRE_SPACE)


def _read_roles(doc, roles: Roles, region: Box) -> tuple[dict[int, bytes], bytes, str]:
    """Each role layer's pixels in region (by id() of the node), and the mask with its
    layout: the selection's 0-255 ("L"), or the mask layer as shown ("BGRA")."""
    nodes = [roles.image, roles.sketch, roles.color, roles.mask]
    present = [n for n in nodes if n is not None]
    read = dict(zip((id(n) for n in present), read_bgra(doc, present, region)))
    if roles.mask is None:
        sel = doc.selection()
        return read, bytes(sel.pixelData(region.x, region.y, region.width, region.height)), "L"
    return read, read[id(roles.mask)], "BGRA"


def build_request(
    doc, roles: Roles, region: Box, seed: int | None, feather: float = 0.0
) -> EditRequest:
    """The edit for `region` (the rectangle the engine reads: see client.edit_region)."""
    read, mask, mask_layout = _read_roles(doc, roles, region)
    return EditRequest(
        canvas_width=doc.width(),
        canvas_height=doc.height(),
        region=region,
        image=read[id(roles.image)],
        image_layout="BGRA",
        mask=mask,
        mask_layout=mask_layout,
        sketch=read[id(roles.sketch)] if roles.sketch is not None else None,
        sketch_layout="BGRA",
        color=read[id(roles.color)] if roles.color is not None else None,
        color_layout="BGRA",
        seed=seed,
        feather=feather,
        reply_layout="BGRA",
    )


def build_restore_request(
    doc, roles: Roles, region: Box, seed: int | None, feather: float = 0.0
) -> RestoreRequest:
    """Restore face over `region` (client.edit_region of the mask's box for the restore
    tool: wide, since the engine finds the face in what it is sent): the image layer and
    the mask, as Generate reads them; sketch and colour play no part."""
    read, mask, mask_layout = _read_roles(doc, Roles(roles.image, mask=roles.mask), region)
    return RestoreRequest(
        canvas_width=doc.width(),
        canvas_height=doc.height(),
        region=region,
        image=read[id(roles.image)],
        image_layout="BGRA",
        mask=mask,
        mask_layout=mask_layout,
        seed=seed,
        feather=feather,
        reply_layout="BGRA",
    )


def tone_region(doc, roles: Roles) -> Box:
    """The image layer's part of the canvas: auto tone measures all of it."""
    rect = roles.image.bounds()
    box = _on_canvas(doc, rect.x(), rect.y(), rect.width(), rect.height())
    if box is None:
        raise DocumentError(f"The layer '{roles.image.name()}' is empty inside the canvas.")
    return box


def build_tone_request(doc, roles: Roles, region: Box) -> ToneRequest:
    """Auto tone of the image layer over `region`; with a selection, only there (softly)."""
    mask = None
    if has_selection(doc):
        sel = doc.selection()
        mask = bytes(sel.pixelData(region.x, region.y, region.width, region.height))
        if not mask.strip(b"\x00"):  # in C: selections can be 50 MB
            raise DocumentError("The selection does not touch the image layer: select part of it.")
    return ToneRequest(
        canvas_width=doc.width(),
        canvas_height=doc.height(),
        region=region,
        image=read_bgra(doc, [roles.image], region)[0],
        image_layout="BGRA",
        mask=mask,
        reply_layout="BGRA",
    )


# -- composite face ----------------------------------------------------------------------

_PICK_FACE = "Select the face layer; the photo must be the paint layer right below it."


def face_layers(doc, face) -> FaceLayers:
    """The composite's layers: `face` (the active layer: a face pasted and moved into
    place, transparent around it) and the paint layer right below it among its siblings,
    the photo. What to composite is the face's alpha > 0, or the selection if there is one.
    Masks between them do not count: they belong to a layer, not to the stack."""
    parent = face.parentNode() if face is not None else None
    if parent is None or face.type() not in LAYER_TYPES:  # no active node, a mask, the root
        raise DocumentError(
            "Composite face: select the face layer first; the photo must be the paint layer "
            "right below it."
        )
    stack = [n for n in parent.childNodes() if n.type() in LAYER_TYPES]
    i = [node_id(n) for n in stack].index(node_id(face))  # stack runs bottom to top
    if i == 0:
        raise DocumentError(
            f"Composite face: there is no layer below '{face.name()}'. {_PICK_FACE}"
        )
    photo = stack[i - 1]
    if photo.type() != "paintlayer":
        raise DocumentError(
            f"Composite face: the layer below '{face.name()}' is '{photo.name()}', a "
            f"{photo.type()[: -len('layer')]} layer, not a paint layer. {_PICK_FACE}"
        )
    drawn = _alpha_bbox(doc, face)
    if drawn is None:
        raise DocumentError(
            f"Composite face: the layer '{face.name()}' is empty inside the canvas. Paste the "
            "face on it (transparent around the face) and move it into place."
        )
    if not has_selection(doc):
        return FaceLayers(face, photo, drawn)
    sel = doc.selection()
    chosen = _on_canvas(doc, sel.x(), sel.y(), sel.width(), sel.height())
    if chosen is None or not _overlap(chosen, drawn):
        raise DocumentError(
            f"Composite face: the selection does not touch the face on '{face.name()}'. "
            "Select part of the face, or select nothing to composite all of it."
        )
    return FaceLayers(face, photo, chosen)


def _alpha_bbox(doc, node) -> Box | None:
    """The canvas rectangle of the node's pixels with alpha > 0. Python loops over rows
    only: each row's alpha bytes are scanned by bytes.strip, in C."""
    rect = node.bounds()  # Krita's extent: it may hold transparent pixels at its edges
    box = _on_canvas(doc, rect.x(), rect.y(), rect.width(), rect.height())
    if box is None:
        return None
    alpha = read_bgra(doc, [node], box)[0][3::4]
    w = box.width
    top = bottom = left = right = None
    for row in range(box.height):
        line = alpha[row * w : (row + 1) * w]
        inner = line.lstrip(b"\x00")
        if not inner:
            continue
        start, stop = w - len(inner), len(line.rstrip(b"\x00"))
        top = row if top is None else top
        bottom = row
        left = start if left is None else min(left, start)
        right = stop if right is None else max(right, stop)
    if top is None:
        return None
    return Box(box.x + left, box.y + top, right - left, bottom - top + 1)


def _overlap(a: Box, b: Box) -> bool:
    return a.x < b.x1 and b.x < a.x1 and a.y < b.y1 and b.y < a.y1


def build_composite_request(doc, layers: FaceLayers, region: Box) -> CompositeRequest:
    """The composite over `region` (client.edit_region of layers.bbox): the photo and the
    face as shown, and the selection as the mask when there is one."""
    mask = None
    if has_selection(doc):
        mask = bytes(doc.selection().pixelData(region.x, region.y, region.width, region.height))
    photo, face = read_bgra(doc, [layers.photo, layers.face], region)
    return CompositeRequest(
        canvas_width=doc.width(),
        canvas_height=doc.height(),
        region=region,
        image=photo,
        face=face,
        image_layout="BGRA",
        face_layout="BGRA",
        mask=mask,
        mask_layout="L",
        reply_layout="BGRA",
    )


# -- writing -----------------------------------------------------------------------------


def _insert_above(image_node, guides=()):
    """The sibling a new result goes right above: the image layer, or the topmost guide it
    was made with (a guide inside a group counts as its group), so the result is seen and
    not hidden under the mask, sketch and colour; then above the results already stacked
    there, so the newest result is the one seen."""
    siblings = image_node.parentNode().childNodes()  # bottom to top
    ids = [node_id(n) for n in siblings]
    i = ids.index(node_id(image_node))
    for guide in guides:
        while guide is not None and node_id(guide) not in ids:
            guide = guide.parentNode()
        if guide is not None:  # a guide outside the image layer's parent does not count
            i = max(i, ids.index(node_id(guide)))
    while i + 1 < len(siblings) and is_result(siblings[i + 1]):
        i += 1
    return siblings[i]


def add_result_layer(doc, image_node, patch: Patch, guides=(), opacity: float = 1.0):
    """A new paint layer ("SF <seed> fill", "SF tone", "SF composite", "SF <seed>
    restore") holding the patch, above the image layer (for a composite: the face layer)
    and the guides it was made with, at `opacity` (0-1: the panel's Strength).

    The pixels go in before the layer joins the document, so adding it is the one undo
    step that also removes it; no existing layer is modified.
    """
    data = patch.bgra
    if not is_wire_format(doc):
        data = _convert([data], patch.width, patch.height, WIRE_SPACE, _space(doc))[0]
    node = doc.createNode(patch.name(), "paintlayer")
    node.setPixelData(data, patch.x, patch.y, patch.width, patch.height)
    if opacity < 1.0:
        node.setOpacity(round(255 * max(0.0, opacity)))
    image_node.parentNode().addChildNode(node, _insert_above(image_node, guides))
    doc.waitForDone()
    return node


def create_guide_layers(doc, photo) -> tuple[list[str], list[str]]:
    """Create SketchFill layers: transparent paint layers 'sketch', 'color' and 'mask'
    (those of the roles no layer plays yet) right above `photo`, top to bottom. Returns
    the names made and the names of the layers already there. Each new layer is its own
    undo step (Krita's Python API has no undo groups)."""
    candidates = layers(doc)
    made, kept = [], []
    above = photo
    for role in reversed(shared.NEW_GUIDES):  # bottom first: each goes above the last
        there = _named(candidates, role)
        if there is not None:
            kept.insert(0, there.name())
            continue
        name = ROLE_NAMES[role][0]
        node = doc.createNode(name, "paintlayer")
        photo.parentNode().addChildNode(node, above)
        above = node
        made.insert(0, name)
    doc.waitForDone()
    return made, kept


def newest_result(doc):
    """The SketchFill result that shows: the topmost one in the Layers docker's order."""
    return next((n for n in layers(doc) if is_result(n)), None)
