"""The `dareu` command (dareu.cli): subcommands, their help, the shipped configs, and the
scripts/*.py wrappers. The subprocess cases run from a folder outside the repo with
PYTHONPATH unset, as an installed package runs."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dareu.cli import COMMANDS, main
from dareu.cli.config import ALIASES, CONFIG_DIR, CONFIGS, config_path

REPO = Path(__file__).resolve().parents[1]
# Subcommands whose module builds its parser with build_parser() (report and compare are
# dareu.report / dareu.eval.compare, dispatched as they are).
PARSERS = ("unlearn", "finetune", "evaluate", "train-attributor", "benchmark", "make-data",
           "config")  # fmt: skip
WRAPPERS = ("unlearn", "finetune", "evaluate", "train_attributor", "benchmark", "make_data")


def dareu(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m dareu.cli ARGS` from `cwd`, without PYTHONPATH (the installed package)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["COLUMNS"] = "100"
    cmd = [sys.executable, "-m", "dareu.cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def load_wrapper(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"wrapper_{name}", REPO / "scripts" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def help_of(run: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        run(argv)
    assert stop.value.code == 0
    return capsys.readouterr().out


# ----------------------------------------------------------------------------- dispatch
@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_dispatches_and_has_help(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    out = help_of(main, [name, "--help"], capsys)
    assert out.startswith(f"usage: dareu {name}"), out[:200]
    assert not any(tmp_path.iterdir()), "--help wrote files"


def test_exit_codes_pass_through(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["make-data", "--validate", str(tmp_path / "missing.jsonl")]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["--help"]) == 0 and "train-attributor" in capsys.readouterr().out
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("dareu ")


@pytest.mark.parametrize("argv", [["bogus"], [], ["config", "path", "bogus"], ["config"]])
def test_bad_command_exits_2_with_one_line(argv: list[str], tmp_path: Path) -> None:
    run = dareu(*argv, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "error:" in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == ""


# ----------------------------------------------------------------------------- help text
def _parser(name: str) -> argparse.ArgumentParser:
    module = importlib.import_module(COMMANDS[name][0])
    parser: argparse.ArgumentParser = module.build_parser()
    return parser


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _actions(sub)
        if not isinstance(action, argparse._HelpAction):
            found.append(action)
    return found


@pytest.mark.parametrize("name", PARSERS)
def test_every_flag_has_help(name: str) -> None:
    missing = [a.option_strings or a.dest for a in _actions(_parser(name)) if not a.help]
    assert not missing, f"dareu {name}: no help for {missing}"


def test_unlearn_help_shows_the_values_used() -> None:
    """Each DareU flag shows the paper's default and, where the tiny profile (the default
    without --model) overrides it, the tiny value."""
    from dareu.ppo.config import TINY_OVERRIDES, PPOConfig

    actions = {a.dest: a for a in _actions(_parser("unlearn"))}
    for name, tiny in TINY_OVERRIDES.items():
        paper = PPOConfig.__dataclass_fields__[name].default
        help_ = actions[name].help or ""
        assert f"default: {paper} (tiny profile: {tiny})" in help_, (name, help_)
    assert "default: 0.95" in (actions["gae_lambda"].help or "")  # not overridden
    assert "tiny profile" not in (actions["gae_lambda"].help or "")
    assert "tiny profile: 64" in (actions["eval_max_new_tokens"].help or "")


# ----------------------------------------------------------------------------- wrappers
@pytest.mark.parametrize("name", WRAPPERS)
def test_wrapper_help_is_the_command_help(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    wrapper = load_wrapper(name)
    assert help_of(wrapper.main, ["--help"], capsys) == help_of(
        main, [name.replace("_", "-"), "--help"], capsys
    )


def test_script_and_module_help_identical_outside_the_repo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["COLUMNS"] = "100"
    script = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "unlearn.py"), "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    module = dareu("unlearn", "--help", cwd=tmp_path)
    assert script.returncode == module.returncode == 0, script.stderr + module.stderr
    assert script.stdout == module.stdout
    assert module.stdout.startswith("usage: dareu unlearn")


# ----------------------------------------------------------------------------- configs
def test_config_path_prints_an_existing_file(tmp_path: Path) -> None:
    run = dareu("config", "path", "fsdp", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    path = Path(run.stdout.strip())
    assert path.is_absolute() and path.is_file() and path.name == "accelerate_fsdp.yaml"
    assert tmp_path not in path.parents
    listed = dareu("config", "list", cwd=tmp_path)
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == len(CONFIGS)


def test_config_names_and_aliases() -> None:
    for name, file in CONFIGS.items():
        assert config_path(name) == CONFIG_DIR / file and config_path(name).is_file()
    for alias, name in ALIASES.items():
        assert config_path(alias) == config_path(name)
    assert config_path("deepspeed-zero3").name == "accelerate_deepspeed_zero3.yaml"
    assert config_path("accelerate_ddp.yaml").name == "accelerate_ddp.yaml"
    with pytest.raises(ValueError, match="unknown config"):
        config_path("tpu")


def test_repo_configs_are_the_package_data() -> None:
    """configs/ at the repo root keeps working: byte-identical copies of the package data
    (edit python/dareu/configs/ and copy)."""
    shipped = sorted(p.name for p in CONFIG_DIR.glob("*.yaml"))
    assert shipped == sorted(CONFIGS.values())
    assert sorted(p.name for p in (REPO / "configs").glob("*.yaml")) == shipped
    for name in shipped:
        assert (REPO / "configs" / name).read_bytes() == (CONFIG_DIR / name).read_bytes(), name


def test_shipped_paper_config_is_the_paper_config() -> None:
    from dareu.cli import unlearn
    from dareu.ppo.config import PPOConfig

    _, ppo = unlearn.build_configs(unlearn.parse(["--config", str(config_path("paper"))]))
    assert ppo == PPOConfig()


def test_accelerate_launch_with_the_shipped_config_warns_nothing(tmp_path: Path) -> None:
    """Without a config file Accelerate fills in --num_processes (the device count: 0 on a
    CPU-only host in older releases), --num_machines, --mixed_precision and
    --dynamo_backend and warns about each; the shipped single config sets them."""
    accelerate = Path(sys.executable).with_name("accelerate")
    if not accelerate.exists():
        pytest.skip("no accelerate launcher next to this python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [str(accelerate), "launch", "--config_file", str(config_path("single")),
           "-m", "dareu.cli", "config", "path", "single"]  # fmt: skip
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip().splitlines()[-1]) == config_path("single")
    assert "not passed to `accelerate launch`" not in run.stderr, run.stderr
