"""DeepSpeech2 for MindSpore, in layers that import only downward:
core → data → model → decoding → training → inference → lab → cli."""
