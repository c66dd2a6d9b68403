"""Command-line entry points (one module per console script) and their shared argument parsing."""
