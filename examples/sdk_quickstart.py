"""The SDK tour: import, train, evaluate and predict from Python.

    python examples/sdk_quickstart.py      (uses a workspace in ./example-workspace)
"""

from llmos import Workspace
from llmos.sdk.demo import demo_files

ws = Workspace("example-workspace")
data = demo_files()
ws.import_dataset(data / "banking_demo_train.csv", name="banking-demo-train")
ws.import_dataset(data / "banking_demo_test.csv", name="banking-demo-test")
outcome = ws.train(
    {
        "name": "quickstart",
        "model": "minilm",
        "method": "lora",
        "data": {"train": "banking-demo-train", "test": "banking-demo-test"},
        "inputs": [{"name": "text", "max_length": 64}],
        "outputs": [{"name": "category"}],
        "train": {"epochs": 2},
    }
)
print(outcome.model.ref, "test accuracy", outcome.metrics["accuracy"])
for row in ws.predict(outcome.model.ref, ["my card still has not come", "how do I change my PIN?"]):
    print(row["label"], round(row["score"], 3))
