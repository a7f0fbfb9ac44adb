"""`ModelPager`, the serving memory manager: one copy of each base model, adapters paged.

Teams deploy many small adapters over a few base models; a full copy per deployment
would multiply memory by the number of deployments. Here every LoRA/IA3 classifier on
the same base shares one `PeftModel`: its adapter (and small head) is loaded into that
model under its own adapter name on first use, kept in a least-recently-used order, and
deleted again when the adapters exceed the byte budget or the count limit. Pinned
deployments are never evicted. An evicted adapter is reloaded transparently by the next
request for it. peft does the adapter bookkeeping (`load_adapter`, `delete_adapter`;
switching is done here, see `_activate`); what none of the libraries does, and this
module adds, is the budget, the LRU, and one tokenizer for deployments trained from the
same base.

Everything that touches a base model runs under its slot's lock: the batcher's worker
thread for that base holds it while it switches adapters and runs a batch. The one
exception is a mixed pass over several LoRA adapters (`serve/mixed.py`), which names
its adapters per row instead of switching: such passes run outside the lock, several at
once, and an adapter is loaded or deleted only while none runs (`BaseSlot.quiesce`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmos.core.errors import first_line
from llmos.core.util import sha256_file
from llmos.serve.errors import ModelUnavailable
from llmos.serve.targets import Target

# transformers loads a model by patching process-wide state for the duration (torch's
# init functions, `nn.Module.register_parameter` for meta-device loading). Two loads in
# two threads interleave those patches and can leave them in place, after which every new
# module is built on the meta device. Loads therefore take turns, process-wide.
LOAD_LOCK = threading.Lock()


def module_bytes(module: Any) -> int:
    """Bytes of a module's parameters and buffers (quantised weights included), or of the
    graph of a model that ONNX Runtime runs."""
    total = getattr(module, "graph_bytes", 0)
    total += sum(t.numel() * t.element_size() for t in module.parameters())
    total += sum(t.numel() * t.element_size() for t in module.buffers())
    for value in module.state_dict().values():  # packed int8 weights are not parameters
        if isinstance(value, tuple):
            total += sum(t.numel() * t.element_size() for t in value if hasattr(t, "element_size"))
    return int(total)


@dataclass
class AdapterSlot:
    ref: str
    name: str  # the adapter's name inside the shared PeftModel
    predictor: Any
    bytes: int
    pinned: bool
    loads: int = 1


@dataclass
class BaseSlot:
    """One base model in memory, or one whole model that shares nothing."""

    key: str
    lock: threading.RLock = field(default_factory=threading.RLock)
    encoder: Any = None  # the shared base encoder, wrapped by peft once an adapter is loaded
    peft: Any = None
    whole: dict[str, Any] = field(default_factory=dict)  # ref -> Predictor, LLM or embedder
    bytes: int = 0
    adapters: OrderedDict[str, AdapterSlot] = field(default_factory=OrderedDict)
    tokenizers: dict[str, Any] = field(default_factory=dict)
    layers: list[Any] = field(default_factory=list)  # peft's adapter layers in the shared model
    active: str | None = None
    # mixed passes run outside `lock` (`readers` of them at a time); loading or deleting
    # an adapter (`writers` waiting to) waits until none is running, on `idle`
    readers: int = 0
    writers: int = 0
    idle: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.idle = threading.Condition(self.lock)

    def quiesce(self) -> None:
        """Wait (holding `lock`) until no mixed pass runs; call before changing the adapters."""
        self.writers += 1
        try:
            while self.readers:
                self.idle.wait()
        finally:
            self.writers -= 1
            self.idle.notify_all()


class ModelPager:
    def __init__(
        self,
        artifacts_dir: Path | None,
        adapter_budget_bytes: int = 512 * 2**20,
        max_adapters: int = 64,
        batch_size: int = 8,
    ) -> None:
        self.artifacts_dir = artifacts_dir
        self.batch_size = batch_size
        self.adapter_budget_bytes = adapter_budget_bytes
        self.max_adapters = max_adapters
        self.slots: dict[str, BaseSlot] = {}
        self._lock = threading.Lock()
        self._names = 0
        self.retry_s = 5.0
        self.failures: dict[str, tuple[float, str]] = {}
        self.adapter_loads = 0
        self.adapter_evictions = 0
        # LoRA adapters of one base share forward passes; LLMOS_MIXED_ADAPTERS=0 turns that
        # off (one pass per adapter, as before), for comparison or should a peft release break it
        self.mixed_batches = os.environ.get("LLMOS_MIXED_ADAPTERS", "1") != "0"

    def slot(self, target: Target) -> BaseSlot:
        with self._lock:
            if target.base_key not in self.slots:
                self.slots[target.base_key] = BaseSlot(target.base_key)
            return self.slots[target.base_key]

    # --- what the batcher and routes ask for (call with the slot's lock held) -------------

    def predictor(self, target: Target) -> Any:
        """The target's classifier `Predictor`, loaded (or its adapter activated) if needed."""
        slot = self.slot(target)
        with slot.lock:
            if not target.adapter:
                return self._whole(slot, target, self._load_classifier)
            entry = slot.adapters.get(target.slot)
            if entry is None:
                entry = self._page_in(slot, target)
            slot.adapters.move_to_end(target.slot)
            self._activate(slot, entry.name)
            return entry.predictor

    def predict_adapters(self, groups: Sequence[tuple[Target, list[Any]]]) -> list[list[Any] | Exception]:
        """Answers for requests to several adapters over one base (one group per adapter),
        or the exception of a group that failed. The LoRA adapters among them run in
        shared forward passes (`serve/mixed.py`), outside the base's lock so that several
        batch workers run at once; the others one adapter at a time, under it."""
        from llmos.serve.mixed import MixedGroup, mixable, predict_mixed
        from llmos.train.predict import CPU_BATCH_TOKENS

        slot = self.slot(groups[0][0])
        results: list[list[Any] | Exception | None] = [None] * len(groups)
        parts: list[MixedGroup] = []
        with slot.lock:
            keep = {target.slot for target, _ in groups}  # a batch does not evict its own adapters
            entries: dict[int, AdapterSlot] = {}
            for i, (target, _) in enumerate(groups):
                try:
                    entry = slot.adapters.get(target.slot) or self._page_in(slot, target, keep)
                except Exception as exc:
                    results[i] = exc
                    continue
                slot.adapters.move_to_end(target.slot)
                entries[i] = entry
            mixed = [i for i, e in entries.items() if mixable(slot.peft, e.name, e.predictor)]
            if len(mixed) > 1 and self.mixed_batches:
                parts = [MixedGroup(entries[i].name, entries[i].predictor, groups[i][1]) for i in mixed]
                while slot.writers:  # an adapter waits to be loaded or dropped: it goes first
                    slot.idle.wait()
                slot.readers += 1
        if parts:
            try:
                max_tokens = parts[0].predictor.max_tokens or CPU_BATCH_TOKENS
                answers = predict_mixed(slot.peft, parts, self.batch_size, max_tokens)
                for i, answer in zip(mixed, answers):
                    results[i] = answer
            except Exception as exc:
                for i in mixed:
                    results[i] = exc
            finally:
                with slot.lock:
                    slot.readers -= 1
                    slot.idle.notify_all()
        with slot.lock:
            for i, entry in entries.items():
                if results[i] is None:
                    try:
                        self._activate(slot, entry.name)
                        results[i] = list(entry.predictor.predict(groups[i][1]))
                    except Exception as exc:
                        results[i] = exc
        return [r if r is not None else RuntimeError("no answer") for r in results]

    def llm(self, target: Target) -> Any:
        slot = self.slot(target)
        with slot.lock:
            return self._whole(slot, target, self._load_llm)

    def embedder(self, target: Target) -> Any:
        slot = self.slot(target)
        with slot.lock:
            return self._whole(slot, target, self._load_embedder)

    def evict(self, ref: str) -> bool:
        """Drop a model or adapter from memory (undeploy); True if it was resident."""
        for slot in list(self.slots.values()):
            with slot.lock:
                if ref in slot.adapters:
                    self._drop_adapter(slot, slot.adapters[ref])
                    return True
                if ref in slot.whole:
                    del slot.whole[ref]
                    if not slot.whole:
                        with self._lock:
                            self.slots.pop(slot.key, None)
                    return True
        return False

    def stats(self) -> dict[str, Any]:
        slots = list(self.slots.values())
        adapters = [a for s in slots for a in list(s.adapters.values())]
        return {
            "base_models": sum(1 for s in slots if s.encoder is not None),
            "whole_models": sum(len(s.whole) for s in slots),
            "model_bytes": sum(s.bytes for s in slots),
            "adapters": len(adapters),
            "adapter_bytes": sum(a.bytes for a in adapters),
            "adapter_budget_bytes": self.adapter_budget_bytes,
            "max_adapters": self.max_adapters,
            "adapter_loads": self.adapter_loads,
            "adapter_evictions": self.adapter_evictions,
        }

    def resident(self, ref: str) -> dict[str, Any] | None:
        """Memory facts of one model or adapter, or None when it is not loaded."""
        for slot in list(self.slots.values()):
            a = slot.adapters.get(ref)
            if a is not None:
                return {
                    "as": "adapter",
                    "base": slot.key,
                    "bytes": a.bytes,
                    "pinned": a.pinned,
                    "loads": a.loads,
                }
            if ref in slot.whole:
                return {"as": "model", "bytes": slot.bytes}
        return None

    # --- loading and eviction ------------------------------------------------------------

    def _whole(self, slot: BaseSlot, target: Target, load: Any) -> Any:
        if target.slot not in slot.whole:
            with self._loading(target):
                slot.whole[target.slot] = load(target)
            slot.bytes = module_bytes(_module_of(slot.whole[target.slot]))
        return slot.whole[target.slot]

    @contextmanager
    def _loading(self, target: Target) -> Iterator[None]:
        """Turn a loading failure into `ModelUnavailable` (HTTP 503) naming the model, and
        remember it for `retry_s`, so that requests to a broken model fail fast instead of
        each trying to load it again."""
        # keyed by what is loaded: the same version with another --optimize loads apart
        key = f"{target.slot}:{target.optimize or ''}"
        failed = self.failures.get(key)
        if failed is not None and time.monotonic() - failed[0] < self.retry_s:
            raise ModelUnavailable(failed[1])
        try:
            with LOAD_LOCK:
                yield
        except Exception as exc:
            what = f"{target.ref} (--optimize {target.optimize})" if target.optimize else target.ref
            message = f"model {what} failed to load: {first_line(exc)}"
            self.failures[key] = (time.monotonic(), message)
            raise ModelUnavailable(message) from exc
        self.failures.pop(key, None)

    def _load_classifier(self, target: Target) -> Any:
        from llmos.train.predict import Predictor

        assert target.folder is not None
        predictor = Predictor.from_folder(target.folder, self.artifacts_dir, optimize=target.optimize)
        predictor.batch_size = self.batch_size
        return predictor

    def _load_llm(self, target: Target) -> Any:
        from llmos.models.llm import LLM

        if target.folder is not None:
            return LLM.from_folder(target.folder, target.ref, self.artifacts_dir)
        return LLM.from_pretrained(target.ref, self.artifacts_dir)

    def _load_embedder(self, target: Target) -> Any:
        from llmos.models.llm_classifier import SentenceEmbedder
        from llmos.models.zoo import resolve_model

        return SentenceEmbedder(resolve_model(target.ref, self.artifacts_dir), batch_size=self.batch_size)

    def _page_in(self, slot: BaseSlot, target: Target, keep: set[str] | None = None) -> AdapterSlot:
        assert target.folder is not None
        folder = target.folder
        expected = sum(p.stat().st_size for p in (folder / "adapter").glob("*.safetensors"))
        expected += (folder / "head.safetensors").stat().st_size
        slot.quiesce()
        keep = (keep or set()) | {target.slot}
        self._make_room(slot, expected, keep)
        with self._loading(target):
            entry = self._load_adapter(slot, target)
        slot.adapters[target.slot] = entry
        self.adapter_loads += 1
        self._make_room(slot, 0, keep)
        return entry

    def _load_adapter(self, slot: BaseSlot, target: Target) -> AdapterSlot:
        from peft import PeftModel
        from peft.tuners.tuners_utils import BaseTunerLayer
        from safetensors.torch import load_file

        from llmos.models.build import load_encoder, load_tokenizer
        from llmos.models.classifier import SequenceClassifier
        from llmos.models.zoo import resolve_model
        from llmos.serve.mixed import install_routing
        from llmos.train.predict import Predictor

        assert target.folder is not None
        config = target.config
        with self._lock:
            self._names += 1
            name = f"d{self._names}"
        adapter_dir = str(target.folder / "adapter")
        if slot.encoder is None:
            slot.encoder = load_encoder(resolve_model(config["base_model"], self.artifacts_dir).path).eval()
            slot.bytes = module_bytes(slot.encoder)
        if slot.peft is None:
            slot.peft = PeftModel.from_pretrained(slot.encoder, adapter_dir, adapter_name=name).eval()
        else:
            slot.peft.load_adapter(adapter_dir, adapter_name=name)
        slot.layers = [m for m in slot.peft.modules() if isinstance(m, BaseTunerLayer)]
        install_routing(slot.peft)
        slot.active = None  # peft may have switched adapters while loading
        model = SequenceClassifier(
            slot.peft, int(config["hidden_size"]), len(config["output"]["labels"]), config["pooling"], 0.0
        )
        model.head.load_state_dict(load_file(str(target.folder / "head.safetensors")))
        tok_dir = target.folder / "tokenizer"
        tok_key = "|".join(sha256_file(p) for p in sorted(tok_dir.iterdir()) if p.is_file())
        if tok_key not in slot.tokenizers:  # deployments trained from one base share one tokenizer
            slot.tokenizers[tok_key] = load_tokenizer(str(tok_dir))
        predictor = Predictor.from_loaded(model, slot.tokenizers[tok_key], config)
        predictor.batch_size = self.batch_size
        size = sum(p.numel() * p.element_size() for n, p in slot.peft.named_parameters() if f".{name}." in n)
        size += module_bytes(model.head)
        return AdapterSlot(target.slot, name, predictor, int(size), target.pinned)

    def _make_room(self, slot: BaseSlot, incoming: int, keep: set[str]) -> None:
        """Evict least recently used, unpinned adapters (other than those in `keep`, the
        ones being served) until `incoming` bytes more fit. Pinned adapters, and a batch's
        own adapters, may exceed the budget."""
        adapters = [a for s in list(self.slots.values()) for a in s.adapters.values()]
        used = sum(a.bytes for a in adapters)
        count = len(adapters) + (1 if incoming else 0)
        for entry in list(slot.adapters.values()):  # oldest first
            if used + incoming <= self.adapter_budget_bytes and count <= self.max_adapters:
                return
            if entry.pinned or entry.ref in keep:
                continue
            self._drop_adapter(slot, entry)
            used -= entry.bytes
            count -= 1

    def _activate(self, slot: BaseSlot, name: str) -> None:
        """Make adapter `name` the one the shared model runs.

        peft's `set_adapter` also sets `requires_grad` on every adapter of every layer,
        which costs O(layers x adapters): about 36 ms per switch with 100 MiniLM adapters
        loaded, more than a one-text forward pass (23 ms). Serving never trains, so only the active
        adapter is set, on each adapter layer (what `set_adapter` ends with)."""
        if slot.active == name:
            return
        if getattr(slot.peft.peft_config[name], "modules_to_save", None):
            slot.peft.set_adapter(name)  # auxiliary module copies need peft's own switch
        else:
            for layer in slot.layers:
                layer._active_adapter = [name]
            slot.peft.base_model.active_adapter = name
            slot.peft.active_adapter = name
        slot.active = name

    def _drop_adapter(self, slot: BaseSlot, entry: AdapterSlot) -> None:
        slot.quiesce()
        slot.peft.delete_adapter(entry.name)
        slot.active = None
        del slot.adapters[entry.ref]
        self.adapter_evictions += 1


def _module_of(obj: Any) -> Any:
    """The torch module behind a Predictor, LLM or embedder (for its memory)."""
    for attr in ("model", "lm", "encoder"):
        if hasattr(obj, attr):
            return getattr(obj, attr)
    return obj
