"""Configuration tree, device selection, logging and atomic file writes: used by every layer."""
