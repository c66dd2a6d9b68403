"""The training loop, its compiled step, LR schedule, optimizer, data parallelism and run checkpoints."""
