import json

import pytest

from llmos.core.errors import NotFoundError, SpecError
from llmos.spec import load_spec, parse_spec, spec_json_schema

BASE = {
    "name": "intents",
    "model": "minilm",
    "data": {"train": "banking"},
    "inputs": [{"name": "text"}],
    "outputs": [{"name": "category"}],
}


def test_short_spec_gets_defaults():
    spec = parse_spec(BASE)
    assert spec.model.name == "minilm" and spec.model.pooling == "auto"
    assert spec.method.type == "lora" and spec.method.r == 16
    assert spec.data.split is not None and spec.data.split.test == 0.2  # no test set: split
    assert spec.train.epochs == 3 and spec.train.lr is None
    assert spec.inputs[0].type == "text" and spec.outputs[0].type == "category"


def test_method_long_form_and_test_dataset():
    spec = parse_spec(
        {
            **BASE,
            "method": {"type": "adalora", "init_r": 8, "target_r": 4},
            "data": {"train": "a", "test": "b"},
        }
    )
    assert spec.method.type == "adalora" and spec.method.target_r == 4
    assert spec.data.split is None


def test_every_problem_is_reported_with_its_path():
    bad = {
        **BASE,
        "train": {"lr": -1, "epohcs": 3, "batch_size": "big"},
        "method": {"type": "lora", "rank": 4},
        "inputs": [{"name": "text", "maxlen": 3}],
    }
    with pytest.raises(SpecError) as info:
        parse_spec(bad)
    problems = info.value.problems
    assert "train.lr: must be > 0" in problems
    assert "train.epohcs: unknown key (did you mean 'epochs'?)" in problems
    assert any(p.startswith("train.batch_size: must be a valid integer") for p in problems)
    assert any(p.startswith("method.rank: unknown key") for p in problems)
    assert any(p.startswith("inputs.0.maxlen: unknown key") for p in problems)
    assert len(problems) == 5
    assert "\n" not in str(info.value)


def test_unknown_method_lists_the_choices():
    with pytest.raises(SpecError, match="method: unknown type 'lorax'; expected one of 'full', 'lora'"):
        parse_spec({**BASE, "method": "lorax"})


@pytest.mark.parametrize(
    ("patch", "problem"),
    [
        ({"name": "bad name"}, "name: String should match pattern"),
        ({"inputs": []}, "inputs: List should have at least 1 item"),
        (
            {"data": {"train": "a", "split": {"test": 0.7, "validation": 0.4}}},
            "data.split: test + validation must be < 1",
        ),
        ({"train": {"warmup": 1.5}}, "train.warmup: must be < 1"),
    ],
)
def test_field_rules(patch, problem):
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, **patch})
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_load_spec_errors(tmp_path):
    with pytest.raises(NotFoundError):
        load_spec(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="a spec is a YAML mapping"):
        load_spec(listing)


def test_json_schema_describes_fields():
    schema = json.loads(spec_json_schema())
    assert schema["title"] == "TaskSpec"
    assert "train" in schema["properties"]
    lora = schema["$defs"]["LoraMethod"]["properties"]["r"]
    assert lora["description"] and lora["exclusiveMinimum"] == 0
