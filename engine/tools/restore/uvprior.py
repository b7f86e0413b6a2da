"""The face-structure prior of the restore tool: the face's texture in MediaPipe's canonical
UV layout, occluded texels filled from the mirrored side, rendered back into the picture.

After the occluded-face patent (seeds/003): a face model in a canonical UV layout turns "what
the hidden cheek looks like" into "what the visible cheek looks like, mirrored". The mesh is
MediaPipe's 468-point canonical face (UVs and triangles from its canonical_face_model.obj,
Apache-2.0); the landmarks come from facemesh.py. Coordinates are picture pixels with pixel
centres at i + 0.5 (MediaPipe's convention); the texture has v pointing down, like images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MESH_FILE = "canonical_face_model.obj"
# A triangle seen this much smaller on the picture than in the texture is too foreshortened
# to take colour from (the far side of a turned face).
MIN_AREA_RATIO = 0.15


@dataclass(frozen=True)
class CanonicalMesh:
    uv: np.ndarray  # (468, 2) float64 texture coordinates in [0, 1], v down
    triangles: np.ndarray  # (F, 3) int64 vertex indices

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CanonicalMesh:
        """Read an OBJ whose faces pair each vertex with one texture coordinate."""
        vts, faces = [], []
        n_vertices = 0
        for line in Path(path).read_text().splitlines():
            kind, *rest = line.split() or [""]
            if kind == "v":
                n_vertices += 1
            elif kind == "vt":
                vts.append([float(rest[0]), float(rest[1])])
            elif kind == "f":
                faces.append([[int(i) - 1 for i in c.split("/")[:2]] for c in rest])
        f = np.asarray(faces)
        uv = np.full((n_vertices, 2), np.nan)
        uv[f[..., 0].ravel()] = np.asarray(vts)[f[..., 1].ravel()]
        if np.isnan(uv).any():
            raise ValueError(f"{path}: some vertices have no texture coordinate")
        uv[:, 1] = 1.0 - uv[:, 1]  # OBJ's v points up
        return cls(uv, f[..., 0])


@dataclass(frozen=True)
class MeshRaster:
    """Where one face's mesh lies in one frame: the frame's pixels in the texture and the
    texture's texels in the frame. Depends on the landmarks only, not on pixels or mask."""

    texel_xy: np.ndarray  # (T, T, 2) float32 frame position of each texel
    texel_ok: np.ndarray  # (T, T) bool: on a triangle that faces the camera
    pixel_uv: np.ndarray  # (H, W, 2) float32 texel position of each frame pixel
    pixel_ok: np.ndarray  # (H, W) bool: covered by the mesh


def _raster(
    verts: np.ndarray,
    triangles: np.ndarray,
    attrs: np.ndarray,
    shape: tuple[int, int],
    depth: np.ndarray | None = None,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Attributes interpolated over the triangles at pixel centres, nearest depth wins.
    Returns (values (H, W, k) float32, covered (H, W) bool)."""
    h, w = shape
    out = np.zeros((h, w, attrs.shape[1]), np.float32)
    zbuf = np.full((h, w), np.inf)
    for t, (a, b, c) in enumerate(triangles):
        if keep is not None and not keep[t]:
            continue
        pa, pb, pc = verts[a], verts[b], verts[c]
        x0 = max(int(np.floor(min(pa[0], pb[0], pc[0]) - 0.5)), 0)
        x1 = min(int(np.ceil(max(pa[0], pb[0], pc[0]) - 0.5)), w - 1)
        y0 = max(int(np.floor(min(pa[1], pb[1], pc[1]) - 0.5)), 0)
        y1 = min(int(np.ceil(max(pa[1], pb[1], pc[1]) - 0.5)), h - 1)
        if x1 < x0 or y1 < y0:
            continue
        det = (pb[0] - pa[0]) * (pc[1] - pa[1]) - (pc[0] - pa[0]) * (pb[1] - pa[1])
        if abs(det) < 1e-9:
            continue
        ys, xs = np.mgrid[y0 : y1 + 1, x0 : x1 + 1] + 0.5
        wb = ((xs - pa[0]) * (pc[1] - pa[1]) - (pc[0] - pa[0]) * (ys - pa[1])) / det
        wc = ((pb[0] - pa[0]) * (ys - pa[1]) - (xs - pa[0]) * (pb[1] - pa[1])) / det
        wa = 1 - wb - wc
        inside = (wa >= -1e-6) & (wb >= -1e-6) & (wc >= -1e-6)
        if not inside.any():
            continue
        z = 0.0 if depth is None else wa * depth[a] + wb * depth[b] + wc * depth[c]
        z = np.broadcast_to(z, inside.shape)
        win = zbuf[y0 : y1 + 1, x0 : x1 + 1]
        take = inside & (z < win)
        win[take] = z[take]
        vals = wa[..., None] * attrs[a] + wb[..., None] * attrs[b] + wc[..., None] * attrs[c]
        out[y0 : y1 + 1, x0 : x1 + 1][take] = vals[take]
    return out, np.isfinite(zbuf)


def _signed_areas(p: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = p[triangles[:, 0]], p[triangles[:, 1]], p[triangles[:, 2]]
    return 0.5 * (
        (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    )


def rasterize_mesh(
    mesh: CanonicalMesh, points: np.ndarray, shape: tuple[int, int], texture: int
) -> MeshRaster:
    """The raster maps of a face whose landmarks `points` (468, 3) are in frame pixels."""
    uv_px = mesh.uv * texture
    area_uv = _signed_areas(uv_px, mesh.triangles)
    area_img = _signed_areas(points[:, :2].astype(np.float64), mesh.triangles)
    scale = (shape[0] * shape[1]) / (texture * texture)
    facing = (np.sign(area_uv) == np.sign(area_img)) & (
        np.abs(area_img)
        > MIN_AREA_RATIO * np.abs(area_uv) * scale * _mean_ratio(area_img, area_uv, scale)
    )
    texel_xy, texel_in = _raster(uv_px, mesh.triangles, points[:, :2], (texture, texture))
    facing_texels, _ = _raster(
        uv_px, mesh.triangles, np.ones((len(uv_px), 1)), (texture, texture), keep=facing
    )
    pixel_uv, pixel_ok = _raster(points[:, :2], mesh.triangles, uv_px, shape, depth=points[:, 2])
    return MeshRaster(texel_xy, texel_in & (facing_texels[..., 0] > 0.5), pixel_uv, pixel_ok)


def _mean_ratio(area_img: np.ndarray, area_uv: np.ndarray, scale: float) -> float:
    """How much larger the face is on the picture than in the texture, typically (so the
    foreshortening test does not depend on the face's size)."""
    ratio = np.abs(area_img) / np.maximum(np.abs(area_uv) * scale, 1e-9)
    return float(np.median(ratio))


def sample(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear samples of `img` (H, W[, C]) at positions `xy` (..., 2) in pixel units with
    centres at i + 0.5; clamped at the border."""
    h, w = img.shape[:2]
    x = np.clip(xy[..., 0] - 0.5, 0, w - 1)
    y = np.clip(xy[..., 1] - 0.5, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2 if w > 1 else 0)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2 if h > 1 else 0)
    fx, fy = x - x0, y - y0
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    if img.ndim == 3:
        fx, fy = fx[..., None], fy[..., None]
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def texture_prior(
    image: np.ndarray, hole: np.ndarray, raster: MeshRaster
) -> tuple[np.ndarray, np.ndarray]:
    """The face texture seen outside the hole, its hidden texels taken from the mirrored
    texel where that one is seen. Returns (texture (T, T, 3) float32, known (T, T) bool)."""
    texture = sample(image.astype(np.float32), raster.texel_xy)
    hidden = sample(hole.astype(np.float32), raster.texel_xy) > 0.05
    seen = raster.texel_ok & ~hidden
    mirrored, mirror_seen = texture[:, ::-1], seen[:, ::-1]
    filled = np.where(seen[..., None], texture, np.where(mirror_seen[..., None], mirrored, 0))
    return filled.astype(np.float32), seen | mirror_seen


def render_prior(
    image: np.ndarray, hole: np.ndarray, raster: MeshRaster
) -> tuple[np.ndarray, np.ndarray]:
    """The prior in the frame: RGB (same scale as `image`) and where it is known (H, W)
    float32 {0, 1}. `hole` is 1 where the picture is hidden."""
    texture, known = texture_prior(image, hole, raster)
    rgb = sample(texture, raster.pixel_uv)
    ok = sample(known.astype(np.float32), raster.pixel_uv) > 0.99
    ok &= raster.pixel_ok
    return rgb * ok[..., None], ok.astype(np.float32)
