"""Evaluate WER/CER (the lab's: python eval.py --pretrain_ckpt CKPT --device_target CPU). Same code as `ds2-eval`."""
from deepspeech2.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
