"""Adaptation: feedback, drift, continual training without forgetting, the gate, rollback, active learning."""
