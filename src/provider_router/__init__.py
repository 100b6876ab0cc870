"""zoey-provider-router: route LLM requests across providers declared as Kubernetes resources."""
