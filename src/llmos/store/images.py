"""Image datasets: a folder of class subfolders, or a table with a column of image paths.

Both become a table whose image column holds absolute paths, so a dataset version names
its images wherever the training or prediction runs from. The images themselves stay
where they are (they are decoded at training time by the image driver); a folder's
content hash covers every image's bytes, so a changed image makes a new version.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from llmos.core.errors import DataError
from llmos.core.util import sha256_file

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGE_COLUMN = "image"
LABEL_COLUMN = "label"


def is_image_name(value: object) -> bool:
    return isinstance(value, str) and value.lower().endswith(IMAGE_SUFFIXES)


def list_images(folder: Path) -> list[Path]:
    """Every image file under `folder`, in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image_folder(folder: Path) -> tuple[pd.DataFrame, str]:
    """`folder/<class>/<image>` as rows (image path, label) and a hash of the content."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    rows: list[tuple[str, str]] = []
    digest = hashlib.sha256()
    for class_dir in classes:
        for image in list_images(class_dir):
            rows.append((str(image.resolve()), class_dir.name))
            digest.update(f"{image.relative_to(folder)}\0{sha256_file(image)}\n".encode())
    if not rows:
        raise DataError(
            f"{folder}: no images found; an image folder holds one subfolder per class "
            f"with {', '.join(IMAGE_SUFFIXES[:3])} ... files in it"
        )
    return pd.DataFrame(rows, columns=[IMAGE_COLUMN, LABEL_COLUMN]), digest.hexdigest()


def absolute_image_paths(frame: pd.DataFrame, base: Path) -> pd.DataFrame:
    """Make relative paths absolute (against `base`, the data file's folder) in every
    column whose values are all image file names."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column].dropna()
        if len(values) and values.map(is_image_name).all():
            frame[column] = [
                v if not is_image_name(v) or Path(v).is_absolute() else str((base / v).resolve())
                for v in frame[column]
            ]
    return frame
