"""Regenerate simulator/data/jpeg_bytes.csv: JPEG sizes of real photos at a model's input size (run once).

    pip install pillow scikit-learn && python tools/make_jpeg_table.py

The photos are scikit-learn's two bundled sample images (china.jpg, flower.jpg, 427x640), centre-cropped to a
square and resized to each input size with Pillow's bicubic filter, then saved as baseline JPEG (4:2:0
chroma subsampling, Pillow's default) at each quality. Only the resulting byte counts are kept.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import PIL
import sklearn
from PIL import Image
from sklearn.datasets import load_sample_images

SIZES = (224, 416)
QUALITIES = (10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95)


def main() -> None:
    data = load_sample_images()
    rows = []
    for name, array in zip(data.filenames, data.images):
        image = Image.fromarray(array)
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        square = image.crop((left, top, left + side, top + side))
        for size in SIZES:
            resized = square.resize((size, size), Image.Resampling.BICUBIC)
            for quality in QUALITIES:
                buffer = io.BytesIO()
                resized.save(buffer, format="JPEG", quality=quality)
                rows.append({"image": Path(name).name, "width": size, "height": size, "quality": quality,
                             "bytes": buffer.tell()})
    path = Path(__file__).resolve().parents[1] / "simulator" / "data" / "jpeg_bytes.csv"
    with path.open("w", newline="") as f:
        f.write(f"# Pillow {PIL.__version__}, scikit-learn {sklearn.__version__} sample images; "
                "see make_jpeg_table.py\n")
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}: {len(rows)} rows")


if __name__ == "__main__":
    main()
