import pytest

from deepspeech2.data.vocab import Vocab, OOVError, ZOO_LABELS, normalize_transcript


def test_zoo_label_order(repo_root):
    vocab = Vocab.from_file(repo_root / "configs" / "labels.json")
    assert vocab.labels == ZOO_LABELS
    assert (vocab.labels[0], vocab.labels[1], vocab.space, vocab.blank, len(vocab)) == ("'", "A", 27, 28, 29)


def test_apostrophe_is_kept_and_round_trips():
    vocab = Vocab()
    ids = vocab.encode("DON'T GO")
    assert ids[3] == 0
    assert vocab.decode(ids) == "DON'T GO"


def test_oov_characters_are_errors():
    with pytest.raises(OOVError, match=r"\['1', '\?'\]"):
        Vocab().encode("HELLO 1?")
    with pytest.raises(OOVError):
        Vocab().encode("A_B")  # the blank symbol is not a character


def test_normalize_transcript():
    assert normalize_transcript("  hello   world\n") == "HELLO WORLD"


def test_bad_labels_file(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text('["A", "BB"]')
    with pytest.raises(ValueError, match="single characters"):
        Vocab.from_file(path)
    path.write_text('["A", "B"]')
    with pytest.raises(ValueError, match="blank symbol"):
        Vocab.from_file(path)
