"""Adaptation: feedback, monitoring, continual training, the gate, rollback, active learning."""
