"""What differs between tasks at training time: the drivers and the model.

Each task's workflow (`train/workflows/`) gives `finetune.fine_tune` a parts builder.
Text classification keeps its own model (`SequenceClassifier`, saved as encoder or
adapter folders, built in `workflows/text_classification.py`); every other task builds a
`FusionModel` here from one encoder entry per input, which is also what is saved, so the
predictor rebuilds exactly the trained model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from torch import nn

from llmos.modalities import OUTPUT_DRIVERS, InputDriver, OutputDriver
from llmos.modalities.image import ImageDriver
from llmos.modalities.inputs import InputSet
from llmos.modalities.tabular import CategoryInputDriver, NumberDriver
from llmos.modalities.text import TextDriver
from llmos.modalities.tokens import TokensDriver
from llmos.spec.schema import (
    CategoryInput,
    FullMethod,
    ImageInput,
    TaskSpec,
    TextInput,
    TokensInput,
)
from llmos.train.loop import seed_everything

if TYPE_CHECKING:
    from llmos.train.workflow import Prepared

NUMBER_WIDTH = 16  # vector per number input; enough for one value and its missing flag


@dataclass
class TaskParts:
    inputs: InputDriver | InputSet
    output: OutputDriver
    model: nn.Module
    config: dict[str, Any]  # llmos_model.json
    base_model: str  # for the registry: the pretrained model(s) the task starts from
    method: str
    save: Callable[[Path], None]
    adapted: list[nn.Module] = field(default_factory=list)  # peft hooks run on these


def fit_output(spec: TaskSpec, values: pd.Series) -> OutputDriver:
    """The output driver, with its labels (or scale) learned from the training values."""
    options = spec.output.model_dump(exclude={"type", "name"})
    if spec.output.type == "tags":
        options["tokens_column"] = spec.inputs[0].name
    return OUTPUT_DRIVERS[spec.output.type].fit(spec.output.name, values, **options)


def _pretrained_entry(
    name: str, method: Any, artifacts_dir: Path | None, column: str, kind: str
) -> tuple[dict[str, Any], Any]:
    from llmos.models.zoo import check_loadable, resolve_model

    resolved = resolve_model(name, artifacts_dir)
    check_loadable(resolved)
    entry = {
        "kind": kind,
        "column": column,
        "model": resolved.alias or resolved.path,
        "method": method.model_dump(),
    }
    return entry, resolved


def fusion_parts(
    spec: TaskSpec, train: pd.DataFrame, output: OutputDriver, prepared: Prepared, total_steps: int
) -> TaskParts:
    """A `FusionModel` with one encoder per input (the model of every task but text
    classification and generation), and its input set."""
    from llmos.models.build import choose_pooling, load_tokenizer
    from llmos.models.fusion import build_fusion, image_preprocessing, save_fusion

    artifacts_dir = prepared.artifacts_dir

    drivers: list[InputDriver] = []
    entries: list[dict[str, Any]] = []
    tokenizers: dict[str, Any] = {}
    for feature in spec.inputs:
        driver: InputDriver
        if isinstance(feature, TextInput | TokensInput):
            own = feature.encoder if isinstance(feature, TextInput) else None
            name = (own.model if own else None) or spec.pretrained.name
            method = (own.method if own else None) or spec.method
            entry, resolved = _pretrained_entry(name, method, artifacts_dir, feature.name, "text")
            pooling = spec.model.pooling if spec.model else "auto"
            entry["pooling"] = choose_pooling(pooling, resolved)
            tokenizer = tokenizers[feature.name] = load_tokenizer(resolved.path)
            driver = (
                TokensDriver(feature.name, tokenizer, feature.max_length)
                if isinstance(feature, TokensInput)
                else TextDriver(feature.name, tokenizer, feature.max_length)
            )
        elif isinstance(feature, ImageInput):
            augment = feature.augment.model_dump() if feature.augment else None
            if feature.encoder.model:
                method = feature.encoder.method or FullMethod()
                entry, resolved = _pretrained_entry(
                    feature.encoder.model, method, artifacts_dir, feature.name, "vision"
                )
                entry["augment"] = augment
                expects = image_preprocessing(resolved.path)
                driver = ImageDriver(
                    feature.name,
                    expects.get("size", feature.size),
                    expects.get("mean", (0.5, 0.5, 0.5)),
                    expects.get("std", (0.5, 0.5, 0.5)),
                )
            else:
                entry = {"kind": "cnn", "column": feature.name, "channels": feature.encoder.channels}
                entry["augment"] = augment
                driver = ImageDriver(feature.name, feature.size)
        elif feature.type == "number":
            driver = NumberDriver(feature.name, feature.normalize)
            entry = {"kind": "number", "column": feature.name, "width": NUMBER_WIDTH}
        else:
            assert isinstance(feature, CategoryInput)  # the spec allows no other input here
            driver = CategoryInputDriver(
                feature.name, embedding_dim=feature.embedding_dim, min_count=feature.min_count
            )
            entry = {"kind": "category", "column": feature.name, "width": feature.embedding_dim}
        drivers.append(driver)
        entries.append(entry)
    inputs = InputSet(drivers)
    inputs.fit(train)
    for entry, driver in zip(entries, drivers):
        if isinstance(driver, CategoryInputDriver):
            entry["size"] = driver.size
    config: dict[str, Any] = {
        "kind": "fusion",
        "task": spec.task,
        "inputs": inputs.state(),
        "encoders": entries,
        "combiner": spec.combiner.model_dump(),
        "dropout": spec.model.dropout if spec.model else 0.1,
        "output": output.state(),
        "total_steps": total_steps,
    }
    seed_everything(spec.train.seed)
    model = build_fusion(config, artifacts_dir)
    pretrained = [e for e in entries if "model" in e]
    base_model = ", ".join(dict.fromkeys(e["model"] for e in pretrained)) or "none (trained from scratch)"
    methods = ", ".join(dict.fromkeys(e["method"]["type"] for e in pretrained)) or "scratch"
    config["base_model"], config["method"] = base_model, methods
    return TaskParts(
        inputs=inputs,
        output=output,
        model=model,
        config=config,
        base_model=base_model,
        method=methods,
        save=lambda folder: save_fusion(model, tokenizers, config, folder),
        adapted=model.adapted_encoders(),
    )
