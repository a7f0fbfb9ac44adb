"""Serving: deployments, the model memory manager, request batching and the HTTP API."""
