"""Spec models of the token, image and tabular features, the per-input encoder and the
combiner of multimodal tasks.

Apart from `schema.py` to keep each module short; `schema.py` puts these into the input
and output unions. The encoder configs name `MethodConfig`, defined in `schema.py`:
they are completed there by `model_rebuild` once it exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from llmos.spec.common import SpecModel

if TYPE_CHECKING:
    from llmos.spec.schema import MethodConfig


def _method_shorthand(data: Any) -> Any:
    """`method: lora` means `method: {type: lora}`."""
    if isinstance(data, dict) and isinstance(data.get("method"), str):
        data = {**data, "method": {"type": data["method"]}}
    return data


class EncoderConfig(SpecModel):
    """The pretrained model one input is encoded with, and how its weights train."""

    model: str | None = Field(None, description="Zoo alias, Hugging Face id or folder; default: `model`.")
    method: MethodConfig | None = Field(
        None, description="frozen, full or a peft method; default: the spec's `method`."
    )

    _shorthand = model_validator(mode="before")(_method_shorthand)


# --- token, image and tabular features ---------------------------------------------


class TokensInput(SpecModel):
    """Pre-split words (a list per row, or one string split on spaces), for token tagging."""

    type: Literal["tokens"] = Field(description="Input type.")
    name: str = Field(description="Column holding the words of each row.")
    max_length: int = Field(
        256, gt=0, le=8192, description="Sub-word tokens kept per row; words cut off are tagged O."
    )


class ImageAugment(SpecModel):
    """Random changes applied to training images only, written in torch."""

    flip: bool = Field(True, description="Mirror half of the images left to right.")
    crop_padding: int = Field(4, ge=0, le=64, description="Pad by this many pixels, then crop back.")
    brightness: float = Field(0.0, ge=0, lt=1, description="Scale brightness by up to +/- this.")


class ImageEncoderConfig(SpecModel):
    """A small CNN trained from scratch (no `model`), or a Hugging Face vision model."""

    model: str | None = Field(
        None, description="Vision model (ViT, ConvNeXt ...) id or folder; none: a small CNN."
    )
    method: MethodConfig | None = Field(
        None, description="For a pretrained `model`: frozen, full or a peft method (default full)."
    )
    channels: list[int] = Field(
        [32, 64, 128], min_length=1, max_length=6, description="CNN: channels of each conv block."
    )

    _shorthand = model_validator(mode="before")(_method_shorthand)


class ImageInput(SpecModel):
    """A column of image file paths (or an imported folder of class subfolders)."""

    type: Literal["image"] = Field(description="Input type.")
    name: str = Field(description="Column holding image paths.")
    size: int = Field(
        32,
        gt=0,
        le=1024,
        description="Images are resized to size x size pixels (a pretrained vision model's own "
        "input size, when its config names one, takes precedence).",
    )
    encoder: ImageEncoderConfig = Field(default_factory=ImageEncoderConfig)
    augment: ImageAugment | None = Field(
        default_factory=ImageAugment, description="Training augmentations; null for none."
    )


class NumberInput(SpecModel):
    """A numeric column, normalised with the training mean and standard deviation."""

    type: Literal["number"] = Field(description="Input type.")
    name: str = Field(description="Numeric column.")
    normalize: bool = Field(True, description="Subtract the training mean, divide by the deviation.")


class CategoryInput(SpecModel):
    """A categorical column, embedded; values unseen in training share an unknown bucket."""

    type: Literal["category"] = Field(description="Input type.")
    name: str = Field(description="Categorical column.")
    embedding_dim: int = Field(16, gt=0, le=1024, description="Size of each value's embedding.")
    min_count: int = Field(
        1, ge=1, description="Values seen fewer times in training go to the unknown bucket."
    )


class TagsOutput(SpecModel):
    """One BIO tag per word (B-TYPE, I-TYPE, O), aligned with a `tokens` input."""

    type: Literal["tags"] = Field(description="Output type.")
    name: str = Field(description="Column holding the tags (a list per row, or space-separated).")


class NumberOutput(SpecModel):
    """A number per row (regression), learned on the normalised scale."""

    type: Literal["number"] = Field(description="Output type.")
    name: str = Field(description="Numeric target column.")


class CombinerConfig(SpecModel):
    """How the encoded inputs are fused before the head."""

    type: Literal["concat", "gated", "transformer"] = Field(
        "concat",
        description="concat: late fusion of pooled vectors; gated: learned per-example weights "
        "per input; transformer: cross-modal attention over every input's token sequence.",
    )
    hidden: int = Field(128, gt=0, le=8192, description="Width of the fused representation.")
    layers: int = Field(1, ge=1, le=12, description="transformer: encoder layers.")
    heads: int = Field(4, ge=1, le=64, description="transformer: attention heads.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout inside the combiner.")
