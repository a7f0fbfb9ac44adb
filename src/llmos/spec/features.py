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


# --- recommendation: interactions and the settings of task: recommendation ------------------


class InteractionsInput(SpecModel):
    """A table of interactions: who (user) touched what (item), with an optional rating or
    weight and an optional timestamp (task: recommendation)."""

    type: Literal["interactions"] = Field(description="Input type.")
    name: str = Field("interactions", description="A name for this input (not a column).")
    user: str = Field("user", description="Column holding the user id.")
    item: str = Field("item", description="Column holding the item id.")
    rating: str | None = Field(None, description="Column holding a rating or weight (explicit feedback).")
    timestamp: str | None = Field(
        None, description="Column holding when it happened (needed by `leave-last` and `temporal`)."
    )
    scale: tuple[float, float] | None = Field(
        None, description="The declared rating scale [low, high]; a rating outside it is an error."
    )
    min_rating: float | None = Field(
        None, description="Only interactions rated at least this count as positives."
    )

    def named_columns(self) -> list[tuple[str, str]]:
        """The columns this input reads, with what each holds (for messages)."""
        named = [
            ("user", self.user),
            ("item", self.item),
            ("rating", self.rating),
            ("timestamp", self.timestamp),
        ]
        return [(what, column) for what, column in named if column]

    @model_validator(mode="after")
    def _scale(self) -> InteractionsInput:
        if self.scale is not None and self.scale[0] >= self.scale[1]:
            raise ValueError("scale: give [low, high] with low < high")
        return self


class ItemFeatures(SpecModel):
    """A table of item features keyed by item id: shown beside recommendations and used
    by request filters."""

    data: str = Field(description="Dataset (NAME or NAME@V) of the item table.")
    id: str = Field("item", description="Column holding the item id (as in the interactions).")
    text: list[str] = Field(default_factory=list, description="Text columns (titles, descriptions).")
    category: list[str] = Field(
        default_factory=list, description="Category columns (several values joined by `separator`)."
    )
    number: list[str] = Field(default_factory=list, description="Numeric columns.")
    separator: str = Field("|", min_length=1, description="Separator of several values in a category cell.")


class EvaluationProtocol(SpecModel):
    """How interactions are split for evaluation; ranking is over every item, with each
    user's training items filtered out."""

    protocol: Literal["random", "leave-last", "temporal"] = Field(
        "random",
        description="random: a stratified random share of each user's interactions; leave-last: "
        "each user's latest interaction; temporal: everything after a global time cut.",
    )
    test: float = Field(0.25, gt=0, lt=1, description="random/temporal: the share held out.")
    k: int = Field(10, ge=1, le=1000, description="Cut-off of the ranking metrics (NDCG@k, ...).")
    seed: int = Field(42, description="Seed of the random split.")


class RecommendationConfig(SpecModel):
    """Settings of task: recommendation: which model, its size and training."""

    model: Literal["popularity", "itemknn", "als", "bpr", "ease", "sasrec", "content"] = Field(
        "als",
        description="The recommender model (content: item features, `items`, rank items nobody has touched).",
    )
    factors: int = Field(64, ge=1, le=4096, description="als/bpr/sasrec: embedding size.")
    regularization: float = Field(0.05, ge=0, description="als: L2 regularisation.")
    iterations: int = Field(15, ge=1, le=1000, description="als: alternating passes.")
    alpha: float = Field(1.0, gt=0, description="als: confidence = 1 + alpha x weight.")
    weighting: Literal["none", "bm25", "tfidf"] = Field(
        "bm25", description="als/itemknn: re-weighting of the user-item matrix."
    )
    neighbours: int = Field(100, ge=1, le=10000, description="itemknn: neighbours kept per item.")
    max_length: int = Field(50, ge=2, le=2048, description="sasrec: recent items read.")
    layers: int = Field(2, ge=1, le=12, description="sasrec: self-attention blocks.")
    heads: int = Field(1, ge=1, le=16, description="sasrec: attention heads.")
    dropout: float = Field(0.2, ge=0, lt=1, description="sasrec: dropout.")
    softmax_sample: int | None = Field(
        None,
        ge=0,
        description="sasrec: items drawn per batch for the sampled softmax "
        "(default 1024; 0: the whole catalogue).",
    )
    negatives: int = Field(1, ge=1, le=1000, description="bpr: negatives sampled per positive.")
    l2: float | None = Field(
        None,
        gt=0,
        description="ease: L2 of the item-item weights (default 500); content: L2 of the "
        "feature-to-factor map (default 10).",
    )
    min_count: int = Field(2, ge=1, description="ease: items with fewer training interactions rank last.")
    encoder: str = Field(
        "minilm", description="content: sentence encoder of the item table's text columns (zoo alias)."
    )
    refit: bool = Field(
        True, description="After evaluation, train again on every interaction before registering."
    )
    evaluation: EvaluationProtocol = Field(default_factory=EvaluationProtocol)
    items: ItemFeatures | None = Field(None, description="The item feature table.")
