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


def test_stage_beside_others_is_shown_but_not_added_to_the_total(tmp_path):
    from deepspeech2.lab.results import collect_results, format_table

    # a stage re-run in the foreground later is counted again (the last record of a stage wins)
    (tmp_path / "stage_times.tsv").write_text("corpus\t200\nlm_tune\t90\nbaseline\t150\tbeside\n"
                                              "export\t7\ntrain\t1000\nexport\t5\n")
    results = collect_results(tmp_path)
    assert results["stage_seconds"] == {"corpus": 200, "lm_tune": 90, "baseline": 150, "export": 5, "train": 1000}
    assert results["stages_beside"] == ["baseline"]
    table = format_table(results)
    assert "baseline 150 (beside the next stages)" in table
    assert "total: 1295 s" in table
    (tmp_path / "stage_times.tsv").write_text("baseline\t150\tbeside\nbaseline\t160\na stray line\n")
    assert "total: 160 s" in format_table(collect_results(tmp_path))
