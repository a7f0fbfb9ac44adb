"""The task registry of the spec: one rules class per task, saying which inputs and outputs
it takes, how it is recognised in a spec without `task`, and what it allows.

Kept apart from `schema.py` so the schema stays a list of fields; the spec's validators
call these. A task is registered here once (`@register_task_rules`); its training
workflow is registered under the same name in `train/workflows/` (whose decorator also
registers the rules class it names, so a task added outside llmos is one module).
Nothing outside the registries compares task names: they ask the rules class
(`task_rules(spec.task).private`, `.generates`, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from pydantic_core import PydanticCustomError

TABULAR = {"number", "category"}

TASK_RULES: dict[str, type[TaskRules]] = {}
R = TypeVar("R", bound="type[TaskRules]")


class TaskRules:
    """What a task accepts. Subclasses set `name` and override `fits_inputs`/`infers`."""

    name: ClassVar[str] = ""
    # recognised in a spec without `task`: the first of the rules in `infer_order` that `infers`
    infer_order: ClassVar[int] = 100
    # feature types a spec's inputs and outputs get when they leave `type` out
    default_input: ClassVar[str] = "text"
    default_output: ClassVar[str] = "category"
    # DP-SGD (`privacy:`) may train it
    private: ClassVar[bool] = False
    # its models write text (a causal LM) rather than predict labels or numbers
    generates: ClassVar[bool] = False
    # `method: zero-shot | few-shot` (prompting an LLM) may stand in for training
    promptable: ClassVar[bool] = False
    # the spec's `model` and `method` are the input's (no per-input `encoder`)
    single_model: ClassVar[bool] = False
    regression: ClassVar[bool] = False
    per_token: ClassVar[bool] = False  # one output per input token (tags)
    # its models are base models that later specs name in `model:` (continued pre-training)
    makes_base: ClassVar[bool] = False
    # `search:` (hyper-parameter search) may train it
    searchable: ClassVar[bool] = False
    # `distill:` (a student learning a teacher's label probabilities) may train it
    distillable: ClassVar[bool] = False
    # its models rank items for a user (`/recommend`; feedback names a served item)
    recommends: ClassVar[bool] = False

    @classmethod
    def infers(cls, input_types: Sequence[Any], output_types: Sequence[Any]) -> bool:
        return False

    @classmethod
    def fits_inputs(cls, types: list[str], out: str) -> bool:
        return "tokens" not in types and "text-pair" not in types

    @classmethod
    def check(cls, spec: Any) -> None:
        """Raise ValueError when the spec's inputs, output and model do not fit the task."""
        _check_classic(cls, spec)


def register_task_rules(cls: R) -> R:
    TASK_RULES[cls.name] = cls
    return cls


def task_rules(name: str) -> type[TaskRules]:
    return TASK_RULES[name]


def known_task(value: str) -> str:
    """The spec's `task` field validator: a registered task (pydantic's own literal message)."""
    if value not in TASK_RULES:
        names = [repr(n) for n in TASK_RULES]
        expected = ", ".join(names[:-1]) + f" or {names[-1]}"
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
    return value


def task_json_schema(schema: dict[str, Any]) -> None:
    schema["enum"] = list(TASK_RULES)


def __getattr__(name: str) -> Any:
    if name == "TASKS":  # the registered names, read when asked (tasks may be added later)
        return tuple(TASK_RULES)
    raise AttributeError(name)


def infer_task(input_types: Sequence[Any], output_types: Sequence[Any]) -> str:
    """The task a spec without `task` describes, from its input and output types."""
    for rules in sorted(TASK_RULES.values(), key=lambda r: r.infer_order):
        if rules.infers(input_types, output_types):
            return rules.name
    raise ValueError("no task fits these inputs and outputs; set `task`")


def check_task(spec: Any) -> None:
    """Raise ValueError when the task, its inputs, output and model do not fit together;
    fill in a generation task's default settings."""
    task_rules(spec.task).check(spec)


# --- the tasks ----------------------------------------------------------------------------


@register_task_rules
class TextClassification(TaskRules):
    name = "text-classification"
    infer_order = 30
    private = True
    searchable = True
    distillable = True
    promptable = True
    single_model = True

    @classmethod
    def infers(cls, input_types: Sequence[Any], output_types: Sequence[Any]) -> bool:
        return list(input_types) in (["text"], ["text-pair"])

    @classmethod
    def fits_inputs(cls, types: list[str], out: str) -> bool:
        return types in (["text"], ["text-pair"])  # one text, or two read jointly


@register_task_rules
class Generation(TaskRules):
    name = "generation"
    infer_order = 10
    default_input = "chat"
    default_output = "text"
    generates = True

    @classmethod
    def infers(cls, input_types: Sequence[Any], output_types: Sequence[Any]) -> bool:
        return "chat" in input_types or "text" in output_types

    @classmethod
    def check(cls, spec: Any) -> None:
        from llmos.spec.schema import GenerationConfig

        feature = spec.inputs[0]
        output = spec.outputs[0] if spec.outputs else None
        if len(spec.inputs) > 1:
            raise ValueError("a generation task reads one input")
        if spec.model is None:
            raise ValueError("model: required (a causal LM: zoo alias, Hugging Face id or folder)")
        if type(spec.method).prompting:
            raise ValueError(f"method {spec.method.type!r} is for text-classification, not generation")
        if output is not None and output.type != "text":
            raise ValueError("a generation task's output is a `text` column (the response)")
        if feature.type == "text" and output is None:
            raise ValueError("a prompt column (`text` input) needs a `text` output with the response")
        if feature.type == "chat" and output is not None:
            raise ValueError("a `chat` input holds the answers itself: leave `outputs` out")
        if spec.generation is None:
            spec.generation = GenerationConfig()


@register_task_rules
class TokenClassification(TaskRules):
    name = "token-classification"
    infer_order = 20
    per_token = True

    @classmethod
    def infers(cls, input_types: Sequence[Any], output_types: Sequence[Any]) -> bool:
        return "tags" in output_types or "tokens" in input_types

    @classmethod
    def fits_inputs(cls, types: list[str], out: str) -> bool:
        return types == ["tokens"] and out == "tags"


@register_task_rules
class ImageClassification(TaskRules):
    name = "image-classification"
    infer_order = 40

    @classmethod
    def infers(cls, input_types: Sequence[Any], output_types: Sequence[Any]) -> bool:
        return list(input_types) == ["image"]

    @classmethod
    def fits_inputs(cls, types: list[str], out: str) -> bool:
        return types == ["image"]


@register_task_rules
class TabularClassification(TaskRules):
    name = "tabular-classification"
    infer_order = 50

    @classmethod
    def infers(cls, input_types: Sequence[Any], output_types: Sequence[Any]) -> bool:
        tabular = bool(input_types) and set(input_types) <= TABULAR
        return tabular and ("number" in output_types) == cls.regression

    @classmethod
    def fits_inputs(cls, types: list[str], out: str) -> bool:
        return set(types) <= TABULAR


@register_task_rules
class TabularRegression(TabularClassification):
    name = "tabular-regression"
    infer_order = 50
    regression = True


@register_task_rules
class MultimodalClassification(TaskRules):
    name = "multimodal-classification"
    infer_order = 90  # what no other task claims

    @classmethod
    def infers(cls, input_types: Sequence[Any], output_types: Sequence[Any]) -> bool:
        return ("number" in output_types) == cls.regression


@register_task_rules
class MultimodalRegression(MultimodalClassification):
    name = "multimodal-regression"
    regression = True


@register_task_rules
class Recommendation(TaskRules):
    """Ranking items per user from an `interactions` input (no outputs): the settings are
    the spec's `recommendation` section (model, evaluation protocol, item features)."""

    name = "recommendation"
    infer_order = 5
    recommends = True
    default_input = "interactions"

    @classmethod
    def infers(cls, input_types: Sequence[Any], output_types: Sequence[Any]) -> bool:
        return "interactions" in input_types

    @classmethod
    def check(cls, spec: Any) -> None:
        from llmos.spec.schema import RecommendationConfig

        if len(spec.inputs) != 1 or spec.inputs[0].type != "interactions":
            raise ValueError("a recommendation task reads one `interactions` input")
        if spec.outputs:
            raise ValueError("a recommendation task has no outputs: leave `outputs` out")
        if spec.generation is not None:
            raise ValueError("`generation` settings belong to task: generation")
        if spec.recommendation is None:
            spec.recommendation = RecommendationConfig()
        rec, feature = spec.recommendation, spec.inputs[0]
        if rec.evaluation.protocol != "random" and feature.timestamp is None:
            raise ValueError(
                f"recommendation.evaluation.protocol {rec.evaluation.protocol!r} needs the "
                "interactions' `timestamp` column"
            )
        if rec.model == "content" and rec.items is None:
            raise ValueError(
                "recommendation.model 'content' reads item features: give `recommendation.items` "
                "(an item table dataset and its text/category/number columns)"
            )


class Rerank(TaskRules):
    """A cross-encoder: a `text-pair` input (query, passage) read jointly, a two-valued
    `category` output (relevant or not); its score is the positive label's probability.
    Never inferred (a text-pair classifier is text-classification): set `task: rerank`."""

    name = "rerank"
    infer_order = 1000
    default_input = "text-pair"
    single_model = True
    # label values read as "relevant", in this order; otherwise the last label (sorted)
    POSITIVE: ClassVar[tuple[str, ...]] = ("1", "true", "yes", "relevant", "positive")

    @classmethod
    def fits_inputs(cls, types: list[str], out: str) -> bool:
        return types == ["text-pair"] and out == "category"

    @classmethod
    def check(cls, spec: Any) -> None:
        if spec.inputs[0].type != "text-pair" or len(spec.inputs) != 1:
            raise ValueError(
                "rerank reads one `text-pair` input (query column `name`, passage column `pair`)"
            )
        if spec.outputs and spec.outputs[0].type != "category":
            raise ValueError("rerank needs one `category` output holding relevance (0/1)")
        _check_classic(cls, spec)

    @classmethod
    def positive_label(cls, labels: Sequence[str]) -> str:
        """The label that means "relevant": 1, true, yes, relevant or positive (any case),
        else the last of the sorted labels."""
        lowered = {str(label).lower(): str(label) for label in labels}
        for name in cls.POSITIVE:
            if name in lowered:
                return lowered[name]
        return sorted(map(str, labels))[-1]


@register_task_rules
class Pretrain(TaskRules):
    """Continued pre-training on raw text: masked-LM (encoders) or causal LM (decoders)."""

    name = "pretrain"
    infer_order = 1000  # never inferred: a spec says `task: pretrain`
    makes_base = True

    @classmethod
    def check(cls, spec: Any) -> None:
        if spec.model is None:
            raise ValueError("model: required (the encoder or causal LM to continue pre-training)")
        if len(spec.inputs) != 1 or spec.inputs[0].type != "text":
            raise ValueError("task pretrain reads one `text` input: the column of raw text")
        if spec.outputs:
            raise ValueError("task pretrain learns from raw text alone: leave `outputs` out")
        method = type(spec.method)
        if not (method.keeps == "weights" or method.shareable):  # adapters merged into the weights
            raise ValueError(f"method {spec.method.type!r}: task pretrain trains with full, lora or ia3")
        if spec.generation is not None:
            raise ValueError("`generation` settings belong to task: generation")


# --- the checks every classification and regression task shares ----------------------------


def _check_classic(rules: type[TaskRules], spec: Any) -> None:
    feature = spec.inputs[0]
    output = spec.outputs[0] if spec.outputs else None
    if rules.single_model and feature.type not in ("text", "text-pair"):
        raise ValueError(f"{spec.task} needs a `text` or `text-pair` input, not {feature.type!r}")
    if output is None or output.type == "text":
        raise ValueError(
            f"{spec.task} needs one `category` or `set` output"
            if rules.single_model
            else f"{spec.task} needs one output"
        )
    if type(spec.method).prompting:
        if not rules.promptable:
            raise ValueError(f"method {spec.method.type!r} is for text-classification")
        if output.type != "category":
            raise ValueError(f"method {spec.method.type!r} predicts one label: use a `category` output")
        if feature.type != "text":
            raise ValueError(f"method {spec.method.type!r} reads one `text` input, not {feature.type!r}")
    if spec.generation is not None:
        raise ValueError("`generation` settings belong to task: generation")
    if getattr(spec, "recommendation", None) is not None:
        raise ValueError("`recommendation` settings belong to task: recommendation")
    _check_features(rules, spec)


def _check_features(rules: type[TaskRules], spec: Any) -> None:
    types = [f.type for f in spec.inputs]
    out = spec.outputs[0].type
    names = [f.name for f in spec.inputs]
    if len(set(names)) != len(names):
        raise ValueError("inputs: every input needs its own column name")
    if "chat" in types:
        raise ValueError("inputs: a `chat` input is for task: generation")
    if "interactions" in types:
        raise ValueError("inputs: an `interactions` input is for task: recommendation")
    if not rules.fits_inputs(types, out):
        raise ValueError(
            f"task {spec.task!r} does not fit inputs of type {', '.join(types)}; "
            f"leave `task` out to infer it (here: {infer_task(types, [out])!r})"
        )
    if rules.single_model and getattr(spec.inputs[0], "encoder", None) is not None:
        raise ValueError("inputs.0.encoder: text classification uses the spec's `model` and `method`")
    if (out == "tags") != rules.per_token or (out == "number") != rules.regression:
        raise ValueError(f"task {spec.task!r} cannot have an output of type {out!r}")
    needs_model = any(
        f.type in ("tokens", "text-pair")
        or (f.type == "text" and (f.encoder is None or f.encoder.model is None))
        for f in spec.inputs
    )
    if needs_model and spec.model is None:
        raise ValueError("model: required for text inputs (a zoo alias, Hugging Face id or folder)")
    stop = spec.train.early_stopping
    if out == "number" and stop is not None and stop.metric != "loss":
        raise ValueError("train.early_stopping.metric: regression watches the validation loss")
