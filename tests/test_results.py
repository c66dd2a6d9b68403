"""Accuracy targets of a run (deepspeech2.lab.results.check_goals) from its eval summaries."""
from deepspeech2.lab.results import check_goals, format_goals


def _results(**sets):
    return {"evals": {f"{name}-{dec}": {"wer": wer, "cer": cer} for name, per in sets.items()
                      for dec, (wer, cer) in per.items()}, "baselines": {}}


def test_best_decoder_per_set_and_relative_heldout_bound():
    results = _results(test_clean={"greedy": (0.40, 0.13), "beam": (0.30, 0.11)},
                       test_other={"greedy": (0.50, 0.25)}, test_heldout={"greedy": (0.60, 0.21)})
    rows = {(r["set"], r["metric"]): r for r in check_goals(results, "quickstart")}
    assert rows[("test_clean", "wer")]["value"] == 0.30 and rows[("test_clean", "wer")]["met"]
    assert rows[("test_clean", "cer")]["value"] == 0.11 and rows[("test_clean", "cer")]["met"]
    assert rows[("test_other", "cer")]["met"] is False
    assert rows[("test_heldout", "cer")]["bound"] == 0.22 and rows[("test_heldout", "cer")]["met"]
    assert "test_other CER 25.00 % ≤ 20.00 %: NOT met" in format_goals(check_goals(results, "quickstart"))


def test_long_recipe_bounds_and_missing_sets():
    rows = check_goals(_results(test_clean={"greedy": (0.14, 0.049)}), "long")
    assert [r["met"] for r in rows] == [True, True, None, None]
    assert "test_heldout CER: not evaluated" in format_goals(rows)
