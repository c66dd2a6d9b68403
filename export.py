"""Export MINDIR (the lab's: python export.py --pre_trained_model_path CKPT). Same code as `ds2-export`."""
from deepspeech2.cli.export import main

if __name__ == "__main__":
    raise SystemExit(main())
