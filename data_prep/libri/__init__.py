"""The parts of ``ds2-prepare-librispeech`` (``data_prep/librispeech.py`` is its CLI and orchestrator).

``layout``: split names, output paths and records; ``utterance``: converting and verifying one
utterance (runs in worker processes); ``part``: one LibriSpeech part from archive or tree to outputs;
``outputs``: manifests and the preparation summary.
"""
