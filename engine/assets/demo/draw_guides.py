"""Draws the demo's guide layers for astronaut.png (NASA portrait of Eileen Collins, public
domain, as shipped by scikit-image). Run once; the PNGs beside it are its output:
mask.png (white = regenerate), sketch.png (dark pen lines on a transparent layer) and
color.png (colour dabs on a transparent layer). The edit closes the open smile.
"""

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent
SIZE = (512, 512)


def main() -> None:
    mask = Image.new("L", SIZE, 0)
    ImageDraw.Draw(mask).ellipse((193, 129, 259, 165), fill=255)
    mask.save(HERE / "mask.png", optimize=True)

    sketch = Image.new("RGBA", SIZE, (0, 0, 0, 0))
    pen = ImageDraw.Draw(sketch)
    ink = (20, 20, 20, 255)
    pen.line(
        [(204, 146), (212, 148), (220, 149), (228, 149), (236, 148), (244, 146), (250, 143)],
        fill=ink,
        width=1,
    )  # lips meeting in a closed smile
    pen.line(
        [(206, 145), (214, 141), (221, 141), (226, 142), (231, 141), (238, 141), (247, 143)],
        fill=ink,
        width=1,
    )  # upper lip
    pen.line([(208, 149), (216, 154), (227, 155), (238, 153), (246, 147)], fill=ink, width=1)
    sketch.save(HERE / "sketch.png", optimize=True)

    # Only the lips are dabbed: the skin around them is left for the generator to match
    # (dabs of a skin tone that is slightly off come back as visible bands).
    color = Image.new("RGBA", SIZE, (0, 0, 0, 0))
    ImageDraw.Draw(color).ellipse((211, 143, 243, 153), fill=(178, 92, 92, 255))
    color.save(HERE / "color.png", optimize=True)


if __name__ == "__main__":
    main()
