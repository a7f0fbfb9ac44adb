"""Kernel types: settings, errors with exit codes, logging and small helpers. No torch here."""
