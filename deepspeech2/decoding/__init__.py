"""CTC decoders, the n-gram LM, WER/CER metrics and corpus evaluation of a forward function."""
