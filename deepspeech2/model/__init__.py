"""The DeepSpeech2 network, its CTC loss, mixed precision and weight loading."""
