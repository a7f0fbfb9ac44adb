"""Image input: a column of image paths, decoded with Pillow once, normalised per batch.

Every image is decoded, converted to RGB and resized to `size` x `size` when the rows
are encoded, and kept as uint8 (a 32x32 image is 3 KB), so epochs never touch the disk.
Batches are normalised with the mean and deviation the encoder expects (a pretrained
vision model's own, 0.5 for the from-scratch CNN). Training augmentations are torch code
inside the image encoder (`models.encoders`), which applies them in training mode only.

A missing file, a file Pillow cannot read, or an empty cell stops encoding with the row,
the column and the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from llmos.core.errors import DataError
from llmos.modalities.base import InputDriver, input_driver


def load_image(path: Any, size: int, where: str) -> Any:
    """One image as a (3, size, size) uint8 tensor; `where` names the row in errors."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    if path is None or (isinstance(path, float) and path != path) or not str(path).strip():
        raise DataError(f"{where}: no image path")
    file = Path(str(path))
    if not file.is_file():
        raise DataError(f"{where}: image {file} does not exist")
    try:
        with Image.open(file) as img:
            rgb = img.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{where}: {file} is not an image Pillow can read ({type(exc).__name__})") from exc
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)


@input_driver("image")
class ImageDriver(InputDriver):
    type_name = "image"

    def __init__(
        self,
        column: str,
        size: int = 32,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
    ) -> None:
        super().__init__(column)
        self.size = size
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]

    def encode(self, values: Sequence[Any]) -> list[Any]:
        return self._decode(values, f"column {self.column!r}")

    def encode_frame(self, frame: pd.DataFrame, source: str) -> list[Any]:
        self.check_column(frame, source)
        return self._decode(frame[self.column].tolist(), f"{source}: column {self.column!r}")

    def _decode(self, values: Sequence[Any], where: str) -> list[Any]:
        return [load_image(v, self.size, f"{where}, row {i + 1}") for i, v in enumerate(values)]

    def length(self, feature: Any) -> int:
        return 1

    def collate(self, features: Sequence[Any]) -> dict[str, Any]:
        import torch

        pixels = torch.stack(list(features)).float().div_(255.0)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return {"pixel_values": (pixels - mean) / std}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "size": self.size, "mean": self.mean, "std": self.std}
