"""Train DeepSpeech2 (the lab's: python train.py --device_target CPU --pre_trained_model_path CKPT). Same code as `ds2-train`."""
from deepspeech2.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
