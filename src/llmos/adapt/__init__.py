"""Adaptation: feedback, monitoring and drift, continual training, the evaluation gate, rollback, active learning."""
