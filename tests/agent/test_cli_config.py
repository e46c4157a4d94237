"""Config dataclasses are the CLI: a field is a flag and lands in the run; bad values are one
`error:` line before anything is written; experimental options say so in --help."""

import json
import re
import subprocess
import sys
from dataclasses import asdict, field, make_dataclass

import pytest

import agent.commands.eval as eval_cmd
import agent.commands.run as run_cmd
import agent.commands.train as train_cmd
import policies.training.train
from agent.cli import COMMANDS, main, parse_command
from agent.commands.eval import EvalCommand
from policies.training.config import TrainConfig, load_train_config


def _cli(*argv: str) -> subprocess.CompletedProcess:
    """The real `agent` command line, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "agent", *argv], capture_output=True,
                          text=True, timeout=300)


def _help(capsys, *argv: str) -> str:
    """`agent ... --help` as one line: box edges dropped, whitespace collapsed."""
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    return " ".join(capsys.readouterr().out.replace("│", " ").split())


def test_a_new_train_config_field_is_a_flag_and_lands_in_the_run(small_dataset, tmp_path,
                                                                 monkeypatch, capsys):
    # A setting added to TrainConfig, and nothing else edited: the command is made over it.
    extended = make_dataclass("ExtendedTrainConfig", [("new_flag", str, field(default="off"))],
                              bases=(TrainConfig,), frozen=True)
    monkeypatch.setattr(train_cmd, "Command", train_cmd.TrainCommand[extended])
    assert "--new-flag STR" in _help(capsys, "train")
    seen = []
    real_train = policies.training.train.train

    def capture(policy, demos, out, cfg, **kw):  # the config training receives
        seen.append(cfg)
        return real_train(policy, demos, out, cfg, **kw)

    monkeypatch.setattr(policies.training.train, "train", capture)
    run = tmp_path / "run"
    assert main(["train", "--data", str(small_dataset), "--out", str(run), "--config", "nano",
                 "--batch-size", "4", "--steps", "2", "--new-flag", "V"]) == 0
    assert type(seen[0]) is extended and seen[0].new_flag == "V"
    saved = json.loads((run / "train_config.json").read_text())
    assert saved == {**asdict(seen[0]), "init": None}  # the checkpoint stores the same config
    assert load_train_config(run, extended) == seen[0]
    # --resume reads it back into the same dataclass: flags not given continue the run as it
    # was (model, batch size, the new setting), the ones given override it.
    assert main(["train", "--data", str(small_dataset), "--out", str(run), "--steps", "3",
                 "--resume"]) == 0
    assert seen[1] == type(seen[0])(**{**asdict(seen[0]), "steps": 3})
    assert load_train_config(run, extended) == seen[1]


def test_a_bad_setting_is_one_error_line_and_writes_nothing(small_dataset, tmp_path):
    run = tmp_path / "run"
    out = _cli("train", "--data", str(small_dataset), "--out", str(run), "--steps", "-1")
    assert out.returncode == 2 and out.stderr == "error: steps must be >= 1, got -1\n"
    assert not run.exists()
    out = _cli("run", "--env", "mujoco:reach", "--rate", "-5")
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == "error: --rate must be >= 0 Hz (0 = as fast as possible), got -5.0\n"


@pytest.mark.parametrize("flags, message", [
    (["--steps", "0"], "steps must be >= 1, got 0"),
    (["--batch-size", "0"], "batch_size must be >= 1, got 0"),
    (["--lr", "-1e-3"], "lr must be > 0, got -0.001"),
    (["--execute", "9"], "execute must be in 1..chunk=8, got 9"),
    (["--eval-episodes", "0"], "--eval-every must be >= 0 and --eval-episodes >= 1"),
    (["--eval-every", "100"], "--eval-env SPEC and --eval-every STEPS go together"),
    (["--video-camera", "1"], "--video-pixel-weight need --tokenizer TOK"),
])
def test_train_refuses_bad_settings_before_reading_any_data(tmp_path, capsys, flags, message):
    run = tmp_path / "run"
    with pytest.raises(SystemExit, match=re.escape(message)) as e:
        main(["train", "--data", str(tmp_path / "no_such_dataset"), "--out", str(run), *flags])
    assert e.value.code == 2 and not run.exists()
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_data_is_required(tmp_path):
    with pytest.raises(SystemExit, match="--data DIR is required") as e:
        main(["train", "--out", str(tmp_path / "run")])
    assert e.value.code == 2


def test_an_unfinished_start_is_free_for_a_fresh_start(small_dataset, tmp_path, capsys):
    # What a start that never reached a checkpoint leaves: its settings and a few curve rows.
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text(json.dumps({"steps": 10, "init": "elsewhere"}))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 7, "loss": 9.0}) + "\n")
    with pytest.raises(SystemExit, match="holds no training state"):
        main(["train", "--data", str(small_dataset), "--out", str(run), "--resume"])
    assert main(["train", "--data", str(small_dataset), "--out", str(run), "--config", "nano",
                 "--batch-size", "4", "--steps", "2"]) == 0
    assert "holds an unfinished start" in capsys.readouterr().err
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]  # the old start's row is gone
    assert json.loads((run / "train_config.json").read_text())["init"] is None
    assert (run / "train_state.pt").is_file()


def test_eval_is_run_unpaced_without_the_run_only_options():
    cmd = parse_command("eval", eval_cmd, ["--env", "mujoco:reach", "--lookahead", "3"])
    assert isinstance(cmd, EvalCommand) and (cmd.rate, cmd.exec_mode) == (0.0, "sync")
    assert (cmd.episodes, cmd.seed, cmd.lookahead.k) == (100, 1_000_000, 3)
    for flag in ("--rate", "--record", "--exec", "--rerun"):
        with pytest.raises(SystemExit) as e:
            parse_command("eval", eval_cmd, ["--env", "mujoco:reach", flag, "1"])
        assert e.value.code == 2


@pytest.mark.parametrize("command, flags", [
    ("run", ["--exec", "--simulate-latency", "--lookahead", "--lookahead-horizon",
             "--lookahead-temperature", "--lookahead-margin", "--lookahead-score",
             "--lookahead-when", "--tokenizer"]),
    ("eval", ["--lookahead", "--lookahead-margin", "--tokenizer"]),
    ("train", ["--stale-prefix", "--stale-prefix-steps", "--stale-prefix-lag", "--tokenizer",
               "--video-weight", "--video-horizon", "--video-state-weight", "--video-camera",
               "--video-pixel-weight"]),
])
def test_experimental_options_say_so_in_help(capsys, command, flags):
    text = _help(capsys, command)
    for flag in flags:  # the flag, its metavar if any, then its help
        assert re.search(rf"(^| ){re.escape(flag)}( \S+)? \(experimental\) ", text), flag
    assert not re.search(r"--steps( \S+)? \(experimental\)", text)


def test_rerun_takes_an_optional_where():
    def where(*argv):
        return parse_command("run", run_cmd, ["--env", "mujoco:reach", *argv]).rerun

    assert where() is None and where("--rerun") == "spawn"
    assert where("--rerun", "--episodes", "1") == "spawn" and where("--rerun", "a.rrd") == "a.rrd"


def test_agent_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", out, re.M), name
    assert "train the token policy on datasets" in out
