"""ds2-tune-lm: one network pass, a grid of (alpha, beta, oov_penalty) decodes, the best point is the one ds2-eval
reproduces with those weights; bad input is a one-line error."""
from __future__ import annotations

import dataclasses
import json

import pytest

from deepspeech2.cli.build_lm import main as build_lm
from deepspeech2.cli.tune_lm import main as tune_main
from deepspeech2.decoding.evaluator import Evaluator
from deepspeech2.decoding.decoders import build_decoder
from deepspeech2.decoding.metrics import error_totals
from deepspeech2.inference.acoustic import load_acoustic_model
from deepspeech2.inference.evaluate import evaluate


@pytest.fixture(scope="module")
def dev_lm(prepared_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "lm.arpa"
    assert build_lm(["--manifest", str(prepared_corpus / "libri_train_manifest.json"), "--order", "2",
                     "--out", str(out)]) == 0
    return out


def test_scoring_posteriors_equals_a_full_evaluation(tiny_config, tiny_checkpoint):
    model = load_acoustic_model(tiny_checkpoint, tiny_config)
    cfg = dataclasses.replace(tiny_config, features=model.features)
    evaluator = Evaluator(model.forward, model.vocab, cfg, cfg.data.val_manifest, build_decoder(cfg.eval, model.vocab))
    posteriors = evaluator.posteriors()
    assert sorted(int(i) for batch in posteriors for i in batch[0]) == list(range(len(evaluator.utts)))
    scored = evaluator.score(posteriors, build_decoder(cfg.eval, model.vocab))
    assert [r.hyp for r in scored] == [r.hyp for r in evaluator.run().results]


def test_best_point_is_what_eval_gets_with_those_weights(tiny_config, tiny_checkpoint, dev_lm, tmp_path, capsys):
    out = tmp_path / "tuning.json"
    dev = tiny_config.data.val_manifest
    args = ["--model", str(tiny_checkpoint), "--manifest", dev, "--lm", str(dev_lm),
            "--alphas", "0.1,1.5", "--betas", "0,3", "--oov-penalties", "inf,2", "--out", str(out),
            "train.cpu_threads=2", "eval.lexicon=true"]
    assert tune_main(args) == 0
    def no_constants(name):
        raise AssertionError(f"not strict JSON: {name}")

    record = json.loads(out.read_text(), parse_constant=no_constants)
    grid = record["grid"]
    weights = [(0.1, 0.0), (0.1, 3.0), (1.5, 0.0), (1.5, 3.0)]
    assert [(p["oov_penalty"], p["alpha"], p["beta"]) for p in grid] == [(pen, *w) for pen in (None, 2.0)
                                                                         for w in weights]   # null: strict
    best = min(grid, key=lambda p: (p["wer"], p["cer"]))
    assert record["best"] == best
    penalty = float("inf") if best["oov_penalty"] is None else best["oov_penalty"]
    assert (f"eval.lm_alpha={best['alpha']:g} eval.lm_beta={best['beta']:g} eval.oov_penalty={penalty:g}"
            in capsys.readouterr().out)
    cfg = dataclasses.replace(tiny_config, data=dataclasses.replace(tiny_config.data, test_manifest=dev),
                              eval=dataclasses.replace(tiny_config.eval, decoder="beam", lm_path=str(dev_lm),
                                                       lm_alpha=best["alpha"], lm_beta=best["beta"],
                                                       lexicon=True, oov_penalty=penalty,
                                                       output_dir=str(tmp_path / "eval")))
    [summary] = evaluate(cfg, tiny_checkpoint)
    assert summary["wer"] == pytest.approx(best["wer"]) and summary["cer"] == pytest.approx(best["cer"])


def test_one_pass_with_two_decoders_equals_two_evaluations(tiny_config, tiny_checkpoint, dev_lm, tmp_path, capsys):
    """``--decoders greedy,beam``: the network runs once, and each decoder's reports are byte for byte those
    of a run with that decoder alone; the lab's printout has a line per decoder."""
    from deepspeech2.cli.evaluate import main as eval_main

    beam = dataclasses.replace(tiny_config.eval, decoder="beam", lm_path=str(dev_lm), lexicon=True)
    alone = {}
    for kind in ("greedy", "beam"):
        cfg = dataclasses.replace(tiny_config, eval=dataclasses.replace(beam, decoder=kind,
                                                                        output_dir=str(tmp_path / kind)))
        [alone[kind]] = evaluate(cfg, tiny_checkpoint)
    cfg = dataclasses.replace(tiny_config, eval=dataclasses.replace(beam, output_dir=str(tmp_path / "both")))
    both = {s["decoder"]: s for s in evaluate(cfg, tiny_checkpoint, decoders=["greedy", "beam", "greedy"])}
    assert list(both) == ["greedy", "beam"]
    for kind, tag in (("greedy", "test_clean"), ("beam", "test_clean-beam")):
        assert (both[kind]["wer"], both[kind]["cer"]) == (alone[kind]["wer"], alone[kind]["cer"])
        for report in ("recogs", "errs", "wer-summary"):
            assert ((tmp_path / "both" / f"{report}-{tag}.txt").read_text()
                    == (tmp_path / kind / f"{report}-{tag}.txt").read_text())
    assert alone["greedy"]["wer"] != alone["beam"]["wer"] or alone["greedy"]["cer"] != alone["beam"]["cer"]
    capsys.readouterr()
    assert eval_main(["--pretrain_ckpt", str(tiny_checkpoint), "--decoders", "greedy,beam",
                      "--manifest", tiny_config.data.test_manifest, "--output_dir", str(tmp_path / "cli"),
                      "eval.lm_path=" + str(dev_lm), f"train.cpu_threads={tiny_config.train.cpu_threads}"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Average WER")]
    assert [line.rsplit(", ", 1)[1] for line in printed] == ["greedy decoding)", "beam decoding)"]
    assert printed[0].startswith(f"Average WER {100 * alone['greedy']['wer']:.3f}")
    with pytest.raises(SystemExit):
        eval_main(["--pretrain_ckpt", str(tiny_checkpoint), "--decoders", "greedy,viterbi"])


@pytest.mark.parametrize("bad, message", [("lm", "LM not found"), ("alphas", "comma-separated numbers"),
                                          ("penalties", "each oov penalty must be >= 0 (inf: strict lexicon), got -1"),
                                          ("nan", "each oov penalty must be >= 0 (inf: strict lexicon), got nan")])
def test_bad_input_is_one_clear_error(tiny_config, tiny_checkpoint, dev_lm, tmp_path, capsys, bad, message):
    args = {"--model": str(tiny_checkpoint), "--manifest": tiny_config.data.val_manifest, "--lm": str(dev_lm),
            "--config": str(tmp_path / "threads.yaml")}
    (tmp_path / "threads.yaml").write_text("train:\n  cpu_threads: 2\n")
    if bad == "lm":
        args["--lm"] = str(tmp_path / "missing.arpa")
        assert tune_main([x for kv in args.items() for x in kv]) == 1
    else:
        extra = {"alphas": ["--alphas", "0.1,x"], "penalties": ["--oov-penalties", "inf,-1"],
                 "nan": ["--oov-penalties", "2,nan"]}[bad]
        with pytest.raises(SystemExit):
            tune_main([x for kv in args.items() for x in kv] + extra)
    assert message in capsys.readouterr().err


def _counting(surface):
    """score(alpha, beta) from a dict, with the calls recorded."""
    calls = []

    def score(alpha, beta):
        calls.append((alpha, beta))
        return surface[alpha, beta]
    return score, calls


ALPHAS, BETAS = (0.3, 0.6, 1.0, 1.5), (0.0, 0.75, 1.5, 3.0)


@pytest.mark.parametrize("start", [(0.3, 0.0), (1.0, 1.0), (1.5, 3.0), (9.0, -5.0)])
def test_coordinate_search_finds_a_bowls_minimum_with_fewer_decodes(start):
    """On a (WER, CER) surface with one minimum away from every start, coordinate descent reaches it,
    scores no point twice and scores fewer than the grid's 16 points; the result is what it scored."""
    from deepspeech2.inference.tune_lm import coordinate_search

    surface = {(a, b): ((a - 1.0) ** 2 + 0.5 * (b - 1.5) ** 2 + 0.1 * a * b, 0.0) for a in ALPHAS for b in BETAS}
    score, calls = _counting(surface)
    scored = coordinate_search(score, ALPHAS, BETAS, start)
    assert min(scored, key=scored.get) == min(surface, key=surface.get) == (1.0, 1.5)
    assert len(calls) == len(set(calls)) == len(scored) < len(surface)
    assert list(scored) == calls


def test_coordinate_search_needs_a_second_round_when_the_axes_interact():
    """The best alpha depends on beta: the first alpha sweep (at the start's beta) settles on alpha 0.6, the
    beta sweep then moves to 3.0, and only a second alpha sweep there finds the minimum (1.5, 3.0)."""
    from deepspeech2.inference.tune_lm import coordinate_search

    best_alpha, offset = (1, 2, 2, 3), (1.0, 5.0, 5.0, -10.0)          # per beta index
    surface = {(a, b): ((ALPHAS.index(a) - best_alpha[BETAS.index(b)]) ** 2 + offset[BETAS.index(b)], 0.0)
               for a in ALPHAS for b in BETAS}
    score, calls = _counting(surface)
    scored = coordinate_search(score, ALPHAS, BETAS, (0.3, 0.0))
    assert min(scored, key=scored.get) == (1.5, 3.0)
    assert len(calls) == len(set(calls)) == 4 + 3 + 3 + 2      # sweeps: alpha, beta, alpha, beta (repeats skipped)


def test_coordinate_search_stops_on_a_flat_surface():
    """Every point equal: ties keep the current point, so one alpha and one beta sweep end the search."""
    from deepspeech2.inference.tune_lm import coordinate_search

    score, calls = _counting({(a, b): (0.5, 0.2) for a in ALPHAS for b in BETAS})
    scored = coordinate_search(score, ALPHAS, BETAS, (0.6, 0.75))
    assert len(scored) == len(ALPHAS) + len(BETAS) - 1
    assert calls[0] == (0.3, 0.75) and calls[-1] == (0.6, 3.0)


def test_coordinate_search_through_the_cli_decodes_part_of_the_grid(tiny_config, tiny_checkpoint, dev_lm, tmp_path):
    """``--search coordinate``: every decoded point is a grid point, none twice, fewer than the grid per
    penalty, and the best recorded is the best decoded; the search is recorded."""
    out = tmp_path / "tuning.json"
    args = ["--model", str(tiny_checkpoint), "--manifest", tiny_config.data.val_manifest, "--lm", str(dev_lm),
            "--alphas", ",".join(map(str, ALPHAS)), "--betas", ",".join(map(str, BETAS)),
            "--oov-penalties", "inf,2", "--search", "coordinate", "--out", str(out), "train.cpu_threads=2",
            "eval.lexicon=true"]
    assert tune_main(args) == 0
    record = json.loads(out.read_text())
    assert record["search"] == "coordinate"
    points = [(p["oov_penalty"], p["alpha"], p["beta"]) for p in record["grid"]]
    assert len(points) == len(set(points))
    for penalty in (None, 2.0):
        mine = [(a, b) for pen, a, b in points if pen == penalty]
        assert mine and set(mine) <= {(a, b) for a in ALPHAS for b in BETAS} and len(mine) < 16
    assert record["best"] == min(record["grid"], key=lambda p: (p["wer"], p["cer"]))


def test_cer_objective_picks_the_lowest_cer(tiny_config, tiny_checkpoint, dev_lm, tmp_path):
    """``--objective cer``: the best point is the grid's lowest CER (ties: WER), recorded with the objective."""
    out = tmp_path / "tuning.json"
    args = ["--model", str(tiny_checkpoint), "--manifest", tiny_config.data.val_manifest, "--lm", str(dev_lm),
            "--alphas", "0.1,1.5", "--betas", "0,3", "--oov-penalties", "inf,2", "--objective", "cer",
            "--out", str(out), "train.cpu_threads=2", "eval.lexicon=true"]
    assert tune_main(args) == 0
    record = json.loads(out.read_text())
    assert record["objective"] == "cer" and len(record["grid"]) == 8
    assert record["best"] == min(record["grid"], key=lambda p: (p["cer"], p["wer"]))
