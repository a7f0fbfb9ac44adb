"""The task spec: what to learn, from which data, with which model and method.

Shaped after Ludwig's input and output features: a task is a list of typed inputs and
outputs, a model, a method and training settings. Later tasks (generation, token tags,
images, tabular, multimodal) arrive as new `type` entries in the input/output unions and
new `task` names, never as a new format. Every field carries a description, so
`llmos spec schema` and the docs come from this file.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field, field_validator, model_validator

from llmos.spec.common import SpecModel
from llmos.spec.features import (
    CategoryInput,
    CombinerConfig,
    EncoderConfig,
    ImageEncoderConfig,
    ImageInput,
    InteractionsInput,
    NumberInput,
    NumberOutput,
    RecommendationConfig,
    TagsOutput,
    TokensInput,
)
from llmos.spec.tasks import (  # noqa: F401  (TASKS: re-exported)
    TASK_RULES,
    TASKS,
    TaskRules,
    check_task,
    infer_task,
    known_task,
    task_json_schema,
    task_rules,
)
from llmos.spec.tracking import TrackingConfig

# --- inputs and outputs ---------------------------------------------------------------


class TextInput(SpecModel):
    """A free-text column, tokenised by the model's tokenizer."""

    type: Literal["text"] = Field("text", description="Input type.")
    name: str = Field(description="Column of the dataset that holds the text.")
    max_length: int = Field(
        128, gt=0, le=8192, description="Tokens kept per text; longer texts are truncated."
    )
    encoder: EncoderConfig | None = Field(
        None, description="This input's own model and method; default: the spec's `model` and `method`."
    )


class TextPairInput(SpecModel):
    """Two text columns read together (a query and a passage, two sentences): the
    tokenizer encodes them jointly as one sequence (`[CLS] a [SEP] b [SEP]` for BERT), so
    the model attends across both; for reranking, paraphrase and entailment."""

    type: Literal["text-pair"] = Field(description="Input type.")
    name: str = Field(description="Column of the first text (the query, the premise).")
    pair: str = Field(description="Column of the second text (the passage, the hypothesis).")
    max_length: int = Field(
        256,
        gt=0,
        le=8192,
        description="Tokens kept per pair; the longer text is truncated first.",
    )


class CategoryOutput(SpecModel):
    """One label per row (single-label classification)."""

    type: Literal["category"] = Field("category", description="Output type.")
    name: str = Field(description="Column of the dataset that holds the label.")
    labels: list[str] | None = Field(
        None,
        min_length=2,
        description="The full label set, when it holds labels without training rows yet "
        "(feedback and `llmos adapt` may bring them later); default: the training labels.",
    )


class SetOutput(SpecModel):
    """Several labels per row (multi-label classification), joined by `separator`."""

    type: Literal["set"] = Field(description="Output type.")
    name: str = Field(description="Column of the dataset that holds the labels.")
    separator: str = Field("|", min_length=1, description="Separator between labels in a cell.")
    threshold: float = Field(0.5, gt=0, lt=1, description="Probability above which a label is predicted.")


class ChatInput(SpecModel):
    """A column of conversations in OpenAI format: lists of `{role, content}` messages
    (JSON text in CSV files). Roles are `system`, `user` and `assistant`; the assistant
    turns are what a generation model learns to write."""

    type: Literal["chat"] = Field("chat", description="Input type.")
    name: str = Field(description="Column of the dataset that holds the conversations.")


class TextOutput(SpecModel):
    """Free text the model learns to write (the response of a prompt/response pair)."""

    type: Literal["text"] = Field("text", description="Output type.")
    name: str = Field(description="Column of the dataset that holds the reference text.")


InputFeature = Annotated[
    TextInput
    | ChatInput
    | TokensInput
    | ImageInput
    | NumberInput
    | CategoryInput
    | InteractionsInput
    | TextPairInput,
    Field(discriminator="type"),
]
OutputFeature = Annotated[
    CategoryOutput | SetOutput | TextOutput | TagsOutput | NumberOutput, Field(discriminator="type")
]


def _members_of(annotated: Any) -> list[Any]:
    """The classes of an `Annotated[A | B | ..., Field(...)]` union."""
    return list(get_args(get_args(annotated)[0]))


# --- model and method -----------------------------------------------------------------


class ModelConfig(SpecModel):
    """The pretrained model: a zoo alias, a Hugging Face model id or a local folder."""

    name: str = Field(
        description="Zoo alias (`llmos models zoo`), Hugging Face id, folder, a model registered by "
        "task: pretrain (NAME or NAME@V), or `auto`: llmos picks one for the text column (for "
        "mostly Chinese, Japanese or Korean text, one whose tokenizer reads it)."
    )
    pooling: Literal["auto", "mean", "cls", "max"] = Field(
        "auto",
        description="How token vectors become one text vector; `auto` follows the model's "
        "sentence-transformers pooling config and falls back to mean.",
    )
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout before the task head.")


class MethodBase(SpecModel):
    """What every fine-tuning method declares about itself, besides its own fields.

    The capabilities are class attributes, not spec keys: the spec's readers (privacy,
    serving, the trainer's defaults) ask the method class instead of keeping lists of
    method names. A new method is one subclass here (with its fields), one entry in
    `MethodConfig` and one builder in `models/peft_methods.py`.
    """

    # (model/adapter lr, head lr) of a model with a task head. Chosen on MiniLM + Banking77:
    # 3 epochs on the full set for full (93.6%) and LoRA (93.2%); 1-epoch sweeps on 2,000
    # rows for the other methods.
    lr: ClassVar[tuple[float, float]] = (1e-3, 2e-3)
    # lr of a causal LM (no head); None: the method does not train generation models.
    # LoRA 5e-4 measured on SmolLM2-135M and the bundled customer-service instructions;
    # the others are the usual orders of magnitude for LLMs.
    generation_lr: ClassVar[float | None] = None
    # (lr, head lr) under DP-SGD; None: not allowed with `privacy` (per-sample gradients
    # are cheap for LoRA's and the head's linear layers; full fine-tuning would need them
    # for the embeddings: vocabulary x hidden per row). Measured on MiniLM + LoRA, Banking77
    # demo intents: benchmarks/dp_banking.py.
    private_lr: ClassVar[tuple[float, float] | None] = None
    # adapters of this method can sit side by side on one base model and be switched per
    # batch by the server's pager
    shareable: ClassVar[bool] = False
    # what a trained model folder keeps of the pretrained model: "weights" (all of them),
    # "adapter" (peft's adapter alone) or "nothing" (the base is used as is)
    keeps: ClassVar[Literal["weights", "adapter", "nothing"]] = "adapter"
    # no training: an LLM is prompted (zero-/few-shot classification)
    prompting: ClassVar[bool] = False

    @classmethod
    def allowed_with_dp(cls) -> bool:
        return cls.private_lr is not None

    @classmethod
    def default_lrs(cls, head: bool = True) -> tuple[float, float]:
        """Default (lr, head lr) for a model with a task head, or (lr, lr) for a causal LM."""
        if head:
            return cls.lr
        assert cls.generation_lr is not None, f"method {cls.method_name()} does not train causal LMs"
        return cls.generation_lr, cls.generation_lr

    @classmethod
    def method_name(cls) -> str:
        return str(cls.model_fields["type"].default)


class FullMethod(MethodBase):
    """Train every weight of the model."""

    type: Literal["full"] = "full"
    lr: ClassVar[tuple[float, float]] = (1e-4, 2e-3)
    generation_lr: ClassVar[float | None] = 2e-5
    keeps: ClassVar[Literal["weights", "adapter", "nothing"]] = "weights"


class LoraMethod(MethodBase):
    """Low-rank adapters (peft LoRA) on the attention and feed-forward projections."""

    type: Literal["lora"] = "lora"
    lr: ClassVar[tuple[float, float]] = (1e-3, 2e-3)
    generation_lr: ClassVar[float | None] = 5e-4
    private_lr: ClassVar[tuple[float, float] | None] = (5e-3, 1e-2)
    shareable: ClassVar[bool] = True
    r: int = Field(16, gt=0, description="Rank of the adapter matrices.")
    alpha: int = Field(32, gt=0, description="Scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: list[str] | None = Field(
        None, description="Module names to adapt; default per architecture."
    )


class AdaLoraMethod(MethodBase):
    """LoRA whose rank budget is reallocated during training (peft AdaLoRA)."""

    type: Literal["adalora"] = "adalora"
    lr: ClassVar[tuple[float, float]] = (3e-3, 2e-3)
    generation_lr: ClassVar[float | None] = 1e-3
    init_r: int = Field(12, gt=0, description="Starting rank of each adapter.")
    target_r: int = Field(8, gt=0, description="Average rank kept after pruning.")
    alpha: int = Field(32, gt=0, description="Scaling numerator.")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: list[str] | None = Field(None, description="Module names to adapt.")


class IA3Method(MethodBase):
    """Learned rescaling vectors on keys, values and feed-forward activations (peft IA3)."""

    type: Literal["ia3"] = "ia3"
    lr: ClassVar[tuple[float, float]] = (3e-2, 2e-3)
    generation_lr: ClassVar[float | None] = 3e-3
    shareable: ClassVar[bool] = True
    target_modules: list[str] | None = Field(None, description="Module names to rescale.")
    feedforward_modules: list[str] | None = Field(
        None, description="Which of `target_modules` are feed-forward layers."
    )


class PrefixMethod(MethodBase):
    """Trainable key/value prefixes in every attention layer (peft prefix tuning)."""

    type: Literal["prefix"] = "prefix"
    lr: ClassVar[tuple[float, float]] = (3e-2, 2e-3)
    generation_lr: ClassVar[float | None] = 1e-2
    num_virtual_tokens: int = Field(20, gt=0, le=512, description="Prefix length.")


class PromptMethod(MethodBase):
    """Trainable soft-prompt embeddings before the input (peft prompt tuning)."""

    type: Literal["prompt"] = "prompt"
    lr: ClassVar[tuple[float, float]] = (3e-1, 2e-3)
    generation_lr: ClassVar[float | None] = 3e-2
    num_virtual_tokens: int = Field(20, gt=0, le=512, description="Soft-prompt length.")


class FrozenMethod(MethodBase):
    """Keep the pretrained weights fixed; only the head (and any fusion layers) train."""

    type: Literal["frozen"] = "frozen"
    # nothing pretrained trains; the head's rate is what counts
    lr: ClassVar[tuple[float, float]] = (1e-3, 2e-3)
    private_lr: ClassVar[tuple[float, float] | None] = (1e-3, 1e-2)
    keeps: ClassVar[Literal["weights", "adapter", "nothing"]] = "nothing"


class ZeroShotMethod(MethodBase):
    """No training: a causal LLM scores each label's name as the answer to a classification
    prompt (log-likelihood), and the most likely label wins."""

    type: Literal["zero-shot"] = "zero-shot"
    prompting: ClassVar[bool] = True
    keeps: ClassVar[Literal["weights", "adapter", "nothing"]] = "nothing"
    labels: dict[str, str] | None = Field(
        None,
        description="Words the LLM reads for each label (e.g. {'0': 'negative'}); default: the "
        "label with `_` and `-` replaced by spaces.",
    )
    instruction: str | None = Field(
        None, description="The system prompt; default asks for one of the listed categories."
    )
    score: Literal["sum", "mean"] = Field(
        "sum", description="Sum or per-token mean of the label tokens' log-probabilities."
    )


class FewShotMethod(ZeroShotMethod):
    """Zero-shot plus `k` labelled training rows in the prompt, the ones most similar to the
    input by sentence-embedding cosine similarity."""

    type: Literal["few-shot"] = "few-shot"  # type: ignore[assignment]
    k: int = Field(4, ge=1, le=64, description="Labelled examples put in each prompt.")
    embedder: str = Field("minilm", description="Sentence encoder that picks the examples.")


MethodConfig = Annotated[
    FullMethod
    | LoraMethod
    | AdaLoraMethod
    | IA3Method
    | PrefixMethod
    | PromptMethod
    | ZeroShotMethod
    | FewShotMethod
    | FrozenMethod,
    Field(discriminator="type"),
]
# the method registry: type name -> config class (derived from the union, so a new method
# is one class and one union member)
METHOD_CONFIGS: dict[str, type[MethodBase]] = {m.method_name(): m for m in _members_of(MethodConfig)}
# names kept for callers that list them (help texts, docs)
METHODS = tuple(n for n, m in METHOD_CONFIGS.items() if not m.prompting)
PROMPT_METHODS = tuple(n for n, m in METHOD_CONFIGS.items() if m.prompting)


def method_config(name: str) -> type[MethodBase]:
    """The config class of a method named in a spec or a saved model (`llmos_model.json`)."""
    return METHOD_CONFIGS[name]


# the per-input encoders (spec/features.py) name MethodConfig, which exists from here on
EncoderConfig.model_rebuild()
ImageEncoderConfig.model_rebuild()
ImageInput.model_rebuild()
TextInput.model_rebuild()


# --- data and training ----------------------------------------------------------------


class SplitConfig(SpecModel):
    """A seeded split of the training dataset, recorded with the model for reproducibility."""

    test: float = Field(0.2, gt=0, lt=1, description="Fraction of rows held out for testing.")
    validation: float = Field(
        0.0, ge=0, lt=1, description="Fraction held out for validation (early stopping)."
    )
    seed: int = Field(42, description="Seed of the split.")
    stratify: bool = Field(True, description="Keep label proportions in every part.")

    @model_validator(mode="after")
    def _fractions(self) -> SplitConfig:
        if self.test + self.validation >= 1:
            raise ValueError("test + validation must be < 1")
        return self


class DataConfig(SpecModel):
    """Which registered datasets to learn from and evaluate on (`NAME` or `NAME@V`)."""

    train: str = Field(description="Training dataset.")
    test: str | None = Field(None, description="Separate test dataset; else `split` is used.")
    validation: str | None = Field(None, description="Separate validation dataset.")
    split: SplitConfig | None = Field(
        None, description="Split of `train` used when `test` (or `validation`) is not given."
    )

    @model_validator(mode="after")
    def _default_split(self) -> DataConfig:
        if self.test is None and self.split is None:
            self.split = SplitConfig()
        return self


class EarlyStopping(SpecModel):
    """Stop when the validation metric has not improved for `patience` epochs."""

    patience: int = Field(2, ge=1, description="Epochs without improvement before stopping.")
    metric: Literal["loss", "accuracy", "macro_f1"] = Field("loss", description="Validation metric watched.")
    min_delta: float = Field(0.0, ge=0, description="Smallest change that counts as better.")


class TrainConfig(SpecModel):
    """Hyper-parameters; unset learning rates take llmos's default for the model and method."""

    epochs: int = Field(3, ge=1, le=1000, description="Passes over the training data.")
    batch_size: int = Field(32, ge=1, le=4096, description="Examples per optimiser step.")
    eval_batch_size: int = Field(128, ge=1, le=65536, description="Examples per eval batch.")
    lr: float | None = Field(None, gt=0, lt=1, description="Learning rate of the model/adapter.")
    head_lr: float | None = Field(None, gt=0, lt=1, description="Learning rate of the task head.")
    schedule: Literal["linear", "cosine", "constant"] = Field(
        "linear", description="Learning-rate schedule after warm-up."
    )
    warmup: float = Field(0.06, ge=0, lt=1, description="Fraction of steps spent warming up.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    gradient_accumulation: int = Field(1, ge=1, description="Batches per optimiser step.")
    group_by_length: bool = Field(
        True, description="Batch texts of similar length together (less padding, faster)."
    )
    early_stopping: EarlyStopping | None = Field(None, description="Enable early stopping.")
    seed: int = Field(42, description="Seed of initialisation, shuffling and dropout.")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="Where to train.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Mixed precision; `auto` is bf16 on GPUs that support it, else fp32."
    )
    checkpoint_every: int | None = Field(
        None,
        ge=1,
        description="Also save a resumable checkpoint every N optimiser steps (one is always "
        "saved after each epoch); a job whose worker dies resumes from the latest.",
    )


# methods DP-SGD trains (their classes' `private_lr`)
PRIVATE_METHODS = tuple(n for n, m in METHOD_CONFIGS.items() if m.allowed_with_dp())
# Defaults of a private run where the spec leaves them unset: DP-SGD's noise and
# clipping want larger batches, higher rates and more epochs than plain training
# (measured on MiniLM + LoRA, Banking77 demo intents: benchmarks/dp_banking.py); the
# learning rates are each method's `private_lr`.
PRIVATE_DEFAULTS: dict[str, Any] = {"epochs": 10, "batch_size": 64}


class PrivacyConfig(SpecModel):
    """Differential privacy: train with DP-SGD (Opacus) to a budget of (epsilon, delta).
    The noise is calibrated for the planned epochs; the epsilon actually spent comes from
    the accountant and is stored with the model. Private runs take their own defaults for
    epochs, batch size and learning rates when the spec leaves them unset."""

    epsilon: float = Field(gt=0, le=100, description="Privacy budget: the largest epsilon the run may spend.")
    delta: float | None = Field(
        None, gt=0, lt=0.01, description="Failure probability; default 1/(10 x training rows)."
    )
    max_grad_norm: float = Field(1.0, gt=0, le=100, description="Per-example gradient clipping norm.")
    accountant: Literal["rdp", "prv"] = Field("rdp", description="Opacus privacy accountant.")


class BackendConfig(SpecModel):
    """Where training and batch prediction run: on this machine, or on a Ray cluster
    (Ray Train with DDP for training, Ray Data for batch prediction)."""

    type: Literal["local", "ray"] = Field(
        "local", description="`local` needs no Ray; `ray` needs `llmos[ray]`."
    )
    address: str | None = Field(
        None,
        description="Ray cluster: `auto` (the running cluster), `ray://host:10001` (Ray Client) or "
        "`host:6379`; unset starts a Ray instance on this machine when none is running.",
    )
    workers: int = Field(
        2, ge=1, le=1024, description="Training workers (DDP processes) or prediction actors."
    )
    cpus_per_worker: int = Field(1, ge=1, description="CPUs each worker holds (and its torch threads).")
    gpus_per_worker: int = Field(0, ge=0, description="GPUs each worker holds.")
    connect_timeout: float = Field(30.0, gt=0, le=600, description="Seconds to wait for the cluster.")


class GenerationEval(SpecModel):
    """How a generation model is evaluated after training."""

    samples: int = Field(
        50, ge=0, le=100000, description="Test rows generated for exact match and ROUGE-L (0: none)."
    )
    max_new_tokens: int = Field(96, ge=1, le=8192, description="Tokens generated per test row.")
    show: int = Field(5, ge=0, le=100, description="Sample generations kept in the report.")


class GenerationConfig(SpecModel):
    """Settings of the `generation` task (instruction tuning of a causal LM)."""

    max_length: int = Field(
        512, gt=0, le=131072, description="Tokens per training example (prompt and answer)."
    )
    overflow: Literal["error", "truncate", "drop"] = Field(
        "error",
        description="What to do with an example longer than `max_length`: stop with an error "
        "naming the row, cut its end, or leave the row out.",
    )
    system_prompt: str | None = Field(
        None, description="System message put first in every conversation that has none."
    )
    chat_template: str | None = Field(
        None,
        description="Jinja chat template, or `chatml`; default: the tokenizer's own. It is stored "
        "with the model and used for training, evaluation, chat and serving alike.",
    )
    packing: bool = Field(
        False, description="Pack several short examples into one sequence of `max_length` tokens."
    )
    eval: GenerationEval = Field(default_factory=GenerationEval)


class SearchRange(SpecModel):
    """Where one field is searched: a range (`low`, `high`, `log`) or a list of `choices`."""

    low: float | None = Field(None, description="Smallest value of a range.")
    high: float | None = Field(None, description="Largest value of a range.")
    log: bool = Field(False, description="Sample the range on a log scale (learning rates).")
    choices: list[Any] | None = Field(None, description="The values to choose from, instead of a range.")


class SearchConfig(SpecModel):
    """Hyper-parameter search (Optuna: TPE or random sampling, successive-halving early
    stopping): each trial trains with its values on the training split and is scored on a
    validation split; the best trial registers as the model, with every trial recorded in
    its metrics. A killed search resumes without rerunning its finished trials."""

    space: dict[str, SearchRange] = Field(
        min_length=1,
        description="Field -> range or choices, e.g. `train.lr: {low: 1e-4, high: 1e-2, log: true}`; "
        "fields are `train.*` numbers and the method's own numbers (`method.r`, ...).",
    )
    metric: Literal["accuracy", "loss", "macro_f1"] = Field(
        "accuracy", description="Validation metric the trials are compared on."
    )
    trials: int = Field(8, ge=1, le=1000, description="How many trials to run.")
    sampler: Literal["tpe", "random"] = Field(
        "tpe", description="`tpe`: Optuna's TPE after `startup_trials` random ones; `random`: all random."
    )
    startup_trials: int = Field(
        3, ge=1, description="Random trials TPE starts with before it models the scores."
    )
    scheduler: Literal["asha", "fifo"] = Field(
        "asha",
        description="`asha` (successive halving) stops poor trials after `grace_period` epochs; "
        "`fifo` runs each to the end.",
    )
    grace_period: int = Field(1, ge=1, description="Epochs every trial gets before ASHA may stop it.")
    time_budget_s: float | None = Field(
        None, gt=0, description="Stop starting trials once they have taken this many seconds in all."
    )


class DistillConfig(SpecModel):
    """Distillation: the student (the spec's model and method) learns the teacher's label
    probabilities on unlabelled rows, beside the hard labels of the training rows; with
    `rounds`, self-training then adds the student's own confident predictions on the
    unlabelled rows for further rounds. The teacher's answers are cached per teacher
    version and text, so a rerun (or another student) does not ask it again."""

    teacher: str = Field(
        description="Registered text classifier (NAME or NAME@V) whose label probabilities the "
        "student learns: a fine-tuned model or a zero-/few-shot LLM; its labels must be the spec's."
    )
    unlabelled: str = Field(
        description="Registered dataset (NAME or NAME@V) with the input's text column; labels are not read."
    )
    temperature: float = Field(
        1.0, gt=0, le=20, description="Softens (> 1) or sharpens (< 1) the teacher's probabilities."
    )
    rounds: int = Field(
        0, ge=0, le=10, description="Self-training rounds after distillation (0: distillation only)."
    )
    confidence: float = Field(
        0.9,
        gt=0,
        lt=1,
        description="Self-training: unlabelled rows the student predicts with at least this "
        "probability take its label in the next round (the rest keep the teacher's).",
    )


def searchable_fields(method: Any) -> dict[str, Any]:
    """The spec fields a search may set, with their annotation: numeric `train.*` fields and
    the method's own numeric fields."""
    found: dict[str, Any] = {}
    for prefix, model in (("train", TrainConfig), ("method", type(method))):
        for name, info in model.model_fields.items():
            kinds = set(get_args(info.annotation)) or {info.annotation}
            if kinds & {int, float} and bool not in kinds and name not in ("seed",):
                found[f"{prefix}.{name}"] = info.annotation
    return found


def check_search(search: SearchConfig, method: Any) -> None:
    fields = searchable_fields(method)
    for key, rng in search.space.items():
        where = f"search.space.{key}"
        if key not in fields:
            raise ValueError(f"{where}: unknown field; searchable fields are {', '.join(sorted(fields))}")
        if rng.choices is not None:
            if rng.low is not None or rng.high is not None:
                raise ValueError(f"{where}: give a range (low, high) or choices, not both")
            if not rng.choices:
                raise ValueError(f"{where}: empty choices")
            continue
        if rng.low is None or rng.high is None:
            raise ValueError(f"{where}: give low and high, or choices")
        if rng.low >= rng.high:
            raise ValueError(f"{where}: empty range (low {rng.low:g} is not below high {rng.high:g})")
        if rng.log and rng.low <= 0:
            raise ValueError(f"{where}: a log range needs low > 0")


class TaskSpec(SpecModel):
    """A complete llmos task: `llmos train SPEC` turns it into a registered model."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="Name the trained model is registered under.",
    )
    task: str = Field(
        "text-classification",
        description="What the model learns; inferred from the features if unset.",
        json_schema_extra=task_json_schema,
    )
    description: str | None = Field(None, description="Free text kept with the model.")
    model: ModelConfig | None = Field(
        None, description="Pretrained model for text inputs (not needed for image or tabular inputs)."
    )
    method: MethodConfig = Field(
        default_factory=LoraMethod, description="Fine-tuning method: full, frozen or a peft method."
    )
    data: DataConfig
    inputs: list[InputFeature] = Field(min_length=1, max_length=64)
    outputs: list[OutputFeature] = Field(default_factory=list, max_length=1)
    combiner: CombinerConfig = Field(
        default_factory=CombinerConfig, description="How several inputs are fused (multimodal tasks)."
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    generation: GenerationConfig | None = Field(
        None, description="Settings of the `generation` task (filled with defaults there)."
    )
    recommendation: RecommendationConfig | None = Field(
        None, description="Settings of the `recommendation` task (filled with defaults there)."
    )
    backend: BackendConfig = Field(default_factory=BackendConfig, description="Where to run.")
    privacy: PrivacyConfig | None = Field(
        None, description="Train with differential privacy (DP-SGD) to this budget."
    )
    search: SearchConfig | None = Field(
        None, description="Search hyper-parameters; the best trial registers as the model."
    )
    tracking: TrackingConfig | None = Field(
        None, description="Also export the finished run to MLflow and/or TensorBoard."
    )
    distill: DistillConfig | None = Field(
        None, description="Learn from a teacher model's label probabilities on unlabelled rows."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        """Accept `model: minilm`, `method: lora`, features without `type`, and no `task`."""
        if isinstance(data, dict):
            data = dict(data)
            if isinstance(data.get("model"), str):
                data["model"] = {"name": data["model"]}
            if isinstance(data.get("method"), str):
                data["method"] = {"type": data["method"]}
            if isinstance(data.get("backend"), str):
                data["backend"] = {"type": data["backend"]}
            rules = TASK_RULES.get(str(data.get("task")), TaskRules)
            for key, default in (("inputs", rules.default_input), ("outputs", rules.default_output)):
                if isinstance(data.get(key), list):
                    data[key] = [
                        {"type": default, **f} if isinstance(f, dict) and "type" not in f else f
                        for f in data[key]
                    ]
            if "task" not in data and isinstance(data.get("inputs"), list):
                types = [f.get("type") for f in data["inputs"] if isinstance(f, dict)]
                outs = [f.get("type") for f in data.get("outputs") or [] if isinstance(f, dict)]
                data["task"] = infer_task(types, outs)
        return data

    _known_task = field_validator("task")(known_task)

    @model_validator(mode="after")
    def _task_fits(self) -> TaskSpec:
        check_task(self)
        return self

    @model_validator(mode="after")
    def _search_fits(self) -> TaskSpec:
        if self.search is None:
            return self
        if not task_rules(self.task).searchable or type(self.method).prompting:
            raise ValueError(f"search: hyper-parameter search trains text-classification, not {self.task}")
        if self.privacy is not None or self.backend.type != "local":
            raise ValueError("search: runs on backend 'local' without privacy")
        check_search(self.search, self.method)
        return self

    @model_validator(mode="after")
    def _distill_fits(self) -> TaskSpec:
        if self.distill is None:
            return self
        if not task_rules(self.task).distillable or type(self.method).prompting:
            raise ValueError(
                f"distill: trains a text-classification student (method full, frozen or a peft "
                f"method), not {self.task} with {self.method.type}"
            )
        if self.search is not None or self.privacy is not None or self.backend.type != "local":
            raise ValueError("distill: runs on backend 'local' without search or privacy")
        return self

    @model_validator(mode="after")
    def _privacy_fits(self) -> TaskSpec:
        if self.privacy is None:
            return self
        if not task_rules(self.task).private or not type(self.method).allowed_with_dp():
            raise ValueError(
                f"privacy: DP-SGD trains text-classification with method {' or '.join(PRIVATE_METHODS)}, "
                f"not {self.task} with {self.method.type}"
            )
        if self.backend.type != "local":
            raise ValueError("privacy: DP-SGD runs on backend 'local'")
        if self.train.gradient_accumulation != 1:
            raise ValueError("privacy: set train.gradient_accumulation to 1 (raise batch_size instead)")
        if self.train.precision == "fp16":
            raise ValueError("privacy: train.precision fp16 is not supported; use auto, fp32 or bf16")
        # private defaults are written into the spec, so the registered spec (and a job's
        # copy of it) says what the run used
        for key, value in PRIVATE_DEFAULTS.items():
            if key not in self.train.model_fields_set:
                setattr(self.train, key, value)
        private_lr = type(self.method).private_lr
        assert private_lr is not None  # allowed_with_dp, checked above
        lr, head_lr = private_lr
        self.train.lr = self.train.lr or lr
        self.train.head_lr = self.train.head_lr or head_lr
        return self

    @property
    def text_input(self) -> TextInput | TextPairInput:
        assert isinstance(self.inputs[0], TextInput | TextPairInput), (
            "text_input is for text-classification specs"
        )
        return self.inputs[0]

    @property
    def pretrained(self) -> ModelConfig:
        """The spec's model, for tasks whose validation made sure there is one."""
        assert self.model is not None, "the spec validator requires a model for text inputs"
        return self.model

    @property
    def output(self) -> CategoryOutput | SetOutput | TagsOutput | NumberOutput:
        assert not isinstance(self.outputs[0], TextOutput), "output is for classification/regression"
        return self.outputs[0]

    @property
    def rec(self) -> RecommendationConfig:
        assert self.recommendation is not None  # filled in for task: recommendation
        return self.recommendation

    @property
    def gen(self) -> GenerationConfig:
        assert self.generation is not None  # filled in for task: generation
        return self.generation
