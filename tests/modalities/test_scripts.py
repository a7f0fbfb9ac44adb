"""Chinese and other CJK text: a mostly-CJK column is recognised, the share of its
characters a tokenizer reads as unknown is measured, an import warns when MiniLM would
read most of it as [UNK], and `model: auto` picks the CJK default for such a column."""

from __future__ import annotations

import pandas as pd

from llmos.modalities.scripts import UNKNOWN_WARN, cjk_share, mostly_cjk, unknown_share
from llmos.models.build import load_tokenizer
from llmos.models.zoo import DEFAULT_CJK_MODEL, DEFAULT_TEXT_MODEL, resolve_model
from llmos.spec import parse_spec

REVIEWS = ["很快，好吃，味道足，量大", "送餐太慢了，菜都凉了", "味道不错 good", "再也不点了！"] * 10


def byte_level_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["hello world"], trainers.BpeTrainer(vocab_size=300, show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def test_cjk_share_and_unknown_share():
    assert cjk_share(REVIEWS) == round(27 / 31, 4) and mostly_cjk(REVIEWS)  # "good": 4 of 31 letters
    assert cjk_share(["my card has not arrived", "send money"]) == 0.0
    minilm = load_tokenizer(resolve_model(DEFAULT_TEXT_MODEL).path)
    share = unknown_share(minilm, REVIEWS)
    assert share > UNKNOWN_WARN, share  # MiniLM's English vocabulary: most characters are [UNK]
    assert unknown_share(minilm, ["my card has not arrived"]) == 0.0
    # a byte-level tokenizer (SmolLM2's kind) has no unknown token at all
    assert unknown_share(byte_level_tokenizer(), REVIEWS) == 0.0


def test_import_warns_for_a_cjk_column_and_auto_picks_the_cjk_default(ws, tmp_path, intents_csv):
    pd.DataFrame({"review": REVIEWS, "label": ["1", "0"] * 20}).to_csv(tmp_path / "zh.csv", index=False)
    info = ws.import_dataset(tmp_path / "zh.csv", "zh")
    [line] = info.warnings
    assert line.startswith("column 'review' is mostly Chinese, Japanese or Korean text: minilm maps ")
    assert f"picks {DEFAULT_CJK_MODEL}" in line
    assert ws.import_dataset(intents_csv, "intents").warnings == []

    from llmos.train.inputs import default_text_model

    spec = {
        "name": "zh",
        "model": "auto",
        "data": {"train": "zh"},
        "inputs": [{"name": "review"}],
        "outputs": [{"name": "label"}],
    }
    zh = pd.read_csv(tmp_path / "zh.csv")
    assert default_text_model(parse_spec(spec), zh) == DEFAULT_CJK_MODEL
    english = pd.DataFrame({"review": ["my card has not arrived"] * 4})
    assert default_text_model(parse_spec(spec), english) == DEFAULT_TEXT_MODEL
