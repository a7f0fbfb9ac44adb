"""Programs: the YAML task spec, its pydantic models and JSON Schema."""

from llmos.spec.load import load_spec, parse_spec, parse_spec_text, spec_json_schema
from llmos.spec.schema import TaskSpec

__all__ = ["TaskSpec", "load_spec", "parse_spec", "parse_spec_text", "spec_json_schema"]
