"""experiments/generalist/text_window.py: token lengths of the generated phrasings under real
BPEs (the note's window figures come from it)."""

import json

from tests.experiments.conftest import load_experiment


def test_window_figures_hold_every_phrasing_in_48_tokens(capsys):
    load_experiment("generalist", "text_window").main()
    out = json.loads(capsys.readouterr().out)
    assert out["chars_max"] <= 128
    # Today's 12-token window with the default's BPE refuses most generated phrasings...
    assert out["default_bpe"]["heldout"]["over_12"] > 0
    # ...a BPE fitted on the train phrasings holds every phrasing in the 48 the note proposes.
    fitted = out["bpe_fitted_on_train"]["512"]
    for split in ("train", "heldout", "ordinary"):
        assert 1 <= fitted[split]["max"] <= 48, (split, fitted[split])
