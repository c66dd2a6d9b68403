"""Training curves from ``metrics.jsonl``: ``python -m deepspeech2.lab.plots --metrics F --out PNG``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["read_metrics", "plot_training_curves", "main"]


def read_metrics(path: str | Path) -> tuple[list[dict], list[dict]]:
    """Step records and epoch records of a run (later records for a step replace earlier ones,
    so a resumed run plots once)."""
    steps: dict[int, dict] = {}
    epochs: dict[int, dict] = {}
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f"{path}:{line_no}: not a JSON record") from None
            (steps if rec.get("type") == "step" else epochs)[rec["step"]] = rec
    return [steps[k] for k in sorted(steps)], [epochs[k] for k in sorted(epochs)]


def plot_training_curves(metrics: str | Path, out: str | Path) -> Path:
    """Train loss per step with dev loss/WER per epoch, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, epochs = read_metrics(metrics)
    fig, (ax_loss, ax_wer) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot([r["step"] for r in steps], [r["loss"] for r in steps], label="train loss")
    dev_loss = [r for r in epochs if "loss" in r]
    if dev_loss:
        ax_loss.plot([r["step"] for r in dev_loss], [r["loss"] for r in dev_loss], "o-", label="dev loss")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("CTC loss")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    dev_wer = [r for r in epochs if "wer" in r]
    for key in ("wer", "cer"):
        ax_wer.plot([r["epoch"] for r in dev_wer], [100 * r[key] for r in dev_wer], "o-", label=f"dev {key.upper()}")
    ax_wer.set_xlabel("epoch (completed)")
    ax_wer.set_ylabel("%")
    ax_wer.legend()
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepspeech2.lab.plots", description=__doc__)
    parser.add_argument("--metrics", required=True, help="metrics.jsonl written by ds2-train")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    print(plot_training_curves(args.metrics, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
