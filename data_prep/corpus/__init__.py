"""Offline synthetic LibriSpeech-format corpus (``ds2-make-corpus``).

Entry points: :func:`data_prep.corpus.make_corpus.make_corpus` (Python API) and
:func:`data_prep.corpus.make_corpus.main` (console script).  Text comes from the committed
files in ``data/`` (rebuilt by ``tools/build_corpus_text.py``); speech from espeak-ng and flite.
"""
