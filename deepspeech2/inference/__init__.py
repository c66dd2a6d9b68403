"""Saved models in use: load a checkpoint or MINDIR, evaluate it, export it, transcribe with it."""
