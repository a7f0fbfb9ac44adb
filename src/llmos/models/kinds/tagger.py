"""`tagger`: a fusion model over one `tokens` input whose head tags every word (BIO tags),
with no combiner; the token-classification model. Saved as a fusion model (`kind:
fusion` with a `tags` output), so it loads, predicts and serves like one."""

from __future__ import annotations

from typing import Any

from llmos.models.kinds import register_kind
from llmos.models.kinds.fusion import FusionKind


@register_kind
class TaggerKind(FusionKind):
    name = "tagger"
    priority = 20  # asked before fusion, whose folders it shares

    @classmethod
    def claims(cls, config: dict[str, Any]) -> bool:
        saved = config.get("kind")
        per_word = (config.get("output") or {}).get("type") == "tags"
        return saved == cls.name or (saved == FusionKind.name and per_word)
