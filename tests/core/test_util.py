import pytest

from llmos.core.errors import UsageError
from llmos.core.util import parse_ref


def test_parse_ref_with_and_without_version():
    assert parse_ref("intents") == ("intents", None)
    assert parse_ref("intents@3") == ("intents", 3)
    assert parse_ref("intents@latest") == ("intents", None)


@pytest.mark.parametrize("bad", ["intents@0", "intents@x", "in tents", "@2", "a/b"])
def test_parse_ref_rejects_malformed(bad):
    with pytest.raises(UsageError):
        parse_ref(bad)
