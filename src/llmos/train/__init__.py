"""Training: one loop for every task, evaluation and metrics, prediction."""
