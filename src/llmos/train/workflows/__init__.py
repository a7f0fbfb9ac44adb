"""The built-in task workflows, one module per task, all of the same shape: a
`Workflow` subclass registered with `@register_workflow` (train/workflow.py), naming
the task's spec rules and implementing `run(job) -> RunResult`."""

from llmos.train.workflows import generation as _generation  # noqa: F401
from llmos.train.workflows import image_classification as _image  # noqa: F401
from llmos.train.workflows import multimodal_classification as _mm_c  # noqa: F401
from llmos.train.workflows import multimodal_regression as _mm_r  # noqa: F401
from llmos.train.workflows import pretrain as _pretrain  # noqa: F401
from llmos.train.workflows import recommendation as _recommendation  # noqa: F401
from llmos.train.workflows import rerank as _rerank  # noqa: F401
from llmos.train.workflows import tabular_classification as _tab_c  # noqa: F401
from llmos.train.workflows import tabular_regression as _tab_r  # noqa: F401
from llmos.train.workflows import text_classification as _text  # noqa: F401
from llmos.train.workflows import token_classification as _tokens  # noqa: F401
