"""Drivers of the new input and output types: sub-word alignment of tags, the unknown
bucket of categories, number scaling, and image decoding errors that name the row."""

import math

import pandas as pd
import pytest
import torch

from llmos.core.errors import DataError
from llmos.modalities.image import ImageDriver
from llmos.modalities.inputs import InputSet, split_batch
from llmos.modalities.tabular import CategoryInputDriver, NumberDriver, NumberOutputDriver
from llmos.modalities.tokens import CUT_WORD, PAD_WORD, TagsDriver, TokensDriver, entities


@pytest.fixture(scope="module")
def wordpiece():
    from transformers import BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "my", "card", "##s", "arrived", "acme", "##corp"]
    return BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)


def test_tokens_align_each_word_with_its_first_sub_word(wordpiece):
    driver = TokensDriver("tokens", wordpiece, max_length=16)
    (ids, starts), (ids2, starts2) = driver.encode([["my", "cards", "AcmeCorp"], "arrived"])
    # [CLS] my card ##s acme ##corp [SEP]
    assert ids == [2, 5, 6, 7, 9, 10, 3]
    assert starts == [1, 2, 4]
    assert starts2 == [1] and len(ids2) == 3


def test_words_beyond_max_length_are_marked_cut(wordpiece):
    driver = TokensDriver("tokens", wordpiece, max_length=4)
    [(ids, starts)] = driver.encode([["my", "cards", "arrived"]])
    assert len(ids) == 4 and starts == [1, 2, CUT_WORD]
    batch = driver.collate(driver.encode([["my"], ["my", "cards", "arrived"]]))
    assert batch["word_starts"].tolist() == [[1, PAD_WORD, PAD_WORD], [1, 2, CUT_WORD]]


def test_entities_follow_bio():
    tags = ["B-loc", "I-loc", "O", "I-per", "B-org", "B-org", "I-org"]
    assert entities(tags) == [("loc", 0, 2), ("per", 3, 4), ("org", 4, 5), ("org", 5, 7)]


def test_tags_targets_padding_and_decoding_trim_rows():
    driver = TagsDriver.fit("tags", pd.Series([["O", "B-loc", "I-loc"], ["B-per"]]))
    assert driver.labels == ["O", "B-loc", "I-loc", "B-per", "I-per"]  # I-per although unseen
    targets = driver.encode(pd.Series([["B-loc", "I-loc"], ["O"]]), "test")
    assert targets.tolist() == [[1, 2], [0, -100]]
    logits = torch.full((2, 2, 5), -5.0)
    logits[0, 0, 1] = logits[0, 1, 2] = logits[1, 0, 0] = 5.0
    logits[1, 1] = math.nan  # padding slot of the one-word row
    assert driver.predicted(driver.probabilities(logits)) == [["B-loc", "I-loc"], ["O"]]
    decoded = driver.decode(driver.probabilities(logits))
    assert decoded[0]["entities"][0]["type"] == "loc" and decoded[1] == {"tags": ["O"], "entities": []}
    assert float(driver.loss(logits, targets)) < 0.01  # NaN padding never reaches the loss


def test_tags_driver_names_the_row_with_a_count_mismatch():
    driver = TagsDriver("tags", ["O", "B-x", "I-x"], tokens_column="tokens")
    frame = pd.DataFrame({"tokens": [["a", "b"], ["c", "d", "e"]], "tags": [["O", "O"], ["O", "B-x"]]})
    with pytest.raises(DataError, match="dataset ner@1: row 2 has 3 tokens but 2 tags"):
        driver.check_column(frame, "dataset ner@1")


def test_unseen_category_goes_to_the_unknown_bucket():
    driver = CategoryInputDriver("segment", min_count=2)
    driver.fit(pd.Series(["gold", "gold", "silver", "silver", "bronze"]))
    assert driver.vocabulary == ["gold", "silver"] and driver.size == 3
    assert driver.encode(["silver", "bronze", "platinum", None]) == [2, 0, 0, 0]
    rebuilt = CategoryInputDriver.from_state(driver.state())
    assert rebuilt.encode(["gold", "never seen"]) == [1, 0]


def test_numbers_are_scaled_and_missing_values_flagged():
    driver = NumberDriver("amount")
    driver.fit(pd.Series([10.0, 20.0, 30.0]))
    assert driver.encode([20.0, None, "30"]) == [(0.0, 0.0), (0.0, 1.0), (pytest.approx(1.2247, 1e-3), 0.0)]
    with pytest.raises(DataError, match=r"column 'amount', row 2: 'lots' is not a number"):
        driver.encode([1, "lots"])
    out = NumberOutputDriver.fit("price", pd.Series([1.0, 3.0]))
    targets = out.encode(pd.Series([1.0, 3.0]), "test")
    assert targets.tolist() == [-1.0, 1.0]
    assert out.decode(out.probabilities(targets.unsqueeze(-1))) == [{"value": 1.0}, {"value": 3.0}]


def test_image_errors_name_the_row_and_path(tmp_path):
    from PIL import Image

    good = tmp_path / "a.png"
    Image.new("RGB", (10, 6), (255, 0, 0)).save(good)
    (tmp_path / "notes.png").write_text("not an image")
    driver = ImageDriver("image", size=8)
    frame = pd.DataFrame({"image": [str(good)]})
    [pixels] = driver.encode_frame(frame, "dataset pets@1")
    assert pixels.shape == (3, 8, 8) and pixels.dtype == torch.uint8 and int(pixels[0, 0, 0]) == 255
    missing = pd.DataFrame({"image": [str(good), str(tmp_path / "gone.jpg")]})
    with pytest.raises(
        DataError, match=r"dataset pets@1: column 'image', row 2: image .*gone.jpg does not exist"
    ):
        driver.encode_frame(missing, "dataset pets@1")
    broken = pd.DataFrame({"image": [str(tmp_path / "notes.png")]})
    with pytest.raises(DataError, match=r"row 1: .*notes.png is not an image Pillow can read"):
        driver.encode_frame(broken, "dataset pets@1")


def test_input_set_prefixes_batch_keys_by_column():
    inputs = InputSet([NumberDriver("amount"), CategoryInputDriver("segment", ["a", "b"])])
    frame = pd.DataFrame({"amount": [1.0, 2.0], "segment": ["b", "z"]})
    batch = inputs.collate(inputs.encode_frame(frame, "test"))
    assert set(batch) == {"amount/values", "segment/ids"}
    assert split_batch(batch)["segment"]["ids"].tolist() == [2, 0]


def test_declared_labels_are_the_label_set_even_without_training_rows():
    import pandas as pd

    from llmos.core.errors import DataError
    from llmos.modalities.category import CategoryDriver

    driver = CategoryDriver.fit("label", pd.Series(["b", "a", "b"]), labels=["c", "a", "b"])
    assert driver.labels == ["c", "a", "b"] and driver.encode(pd.Series(["c"]), "feedback").tolist() == [0]
    with pytest.raises(DataError, match=r"labels missing from the spec's `labels`: 'z'"):
        CategoryDriver.fit("label", pd.Series(["a", "z"]), labels=["a", "b"])
