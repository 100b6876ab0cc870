"""Integration tests: they run against a real Kubernetes API server."""
