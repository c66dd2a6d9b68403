"""Audio, features, manifests, vocabulary, batching and the conv-stack length formulas (no model code)."""
