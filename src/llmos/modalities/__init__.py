"""Drivers: how raw columns become tensors and predictions become JSON.

One module per input or output type, each registered under the spec's `type` name.
A new type is a new module plus its registry line.
"""

from llmos.modalities import category as _category  # noqa: F401  (registers "category", "set")
from llmos.modalities import chat as _chat  # noqa: F401  (registers "chat")
from llmos.modalities import image as _image  # noqa: F401  (registers input "image")
from llmos.modalities import interactions as _interactions  # noqa: F401  (input "interactions")
from llmos.modalities import tabular as _tabular  # noqa: F401  (inputs "number", "category"; output "number")
from llmos.modalities import text as _text  # noqa: F401  (registers "text")
from llmos.modalities import text_pair as _text_pair  # noqa: F401  (registers "text-pair")
from llmos.modalities import tokens as _tokens  # noqa: F401  (input "tokens", output "tags")
from llmos.modalities.base import (
    INPUT_DRIVERS,
    OUTPUT_DRIVERS,
    InputDriver,
    OutputDriver,
    input_driver,
    output_driver,
)

__all__ = [
    "INPUT_DRIVERS",
    "OUTPUT_DRIVERS",
    "InputDriver",
    "OutputDriver",
    "input_driver",
    "output_driver",
]
