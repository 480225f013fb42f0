"""Unlearn a forget request from a model: DareU (default) or a baseline, then evaluate.

    dareu unlearn                                   # the embedded default, end to end
    dareu unlearn --seed 1 --method npo             # another seed, a baseline on the same job
    accelerate launch --config_file "$(dareu config path single)" -m dareu.cli unlearn
    accelerate launch --config_file "$(dareu config path ddp)" --num_processes 4 \\
        -m dareu.cli unlearn --model /models/tofu_llama2_7b --benchmark tofu \\
        --tofu-dir ../shared/data/tofu --forget forget10 --format llama2 \\
        --retain-model /models/tofu_llama2_7b_retain90

`scripts/unlearn.py` is the same command (`python scripts/unlearn.py`, or after
`accelerate launch --config_file ...`). The first line printed is the run folder. Every
DareU constant is a flag; each flag's help shows the value used: the paper's, and the tiny
profile's where it differs (no --model: the tiny profile; --profile picks one;
docs/dareu.md lists each deviation).
Exit codes: 0 done, 2 invalid arguments/configuration/input, 3 stopped by
--stop-after-batches (resume with --resume).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any, get_args

from dareu.cli import tofu_authors
from dareu.pipeline import JobConfig, main_process_print_first
from dareu.ppo.config import TINY_OVERRIDES, PPOConfig, paper_config, tiny_config
from dareu.train.common import TrainingStopped

SHARED_PPO = {"lr", "epochs", "batch_size", "lora", "lora_r", "lora_alpha", "lora_dropout",
              "lora_targets", "gradient_checkpointing"}  # fmt: skip
FLAG_TYPES: dict[str, Any] = {"int": int, "float": float, "str": str}


def dareu_default(name: str) -> str:
    """'default: X (tiny profile: Y)' of a PPOConfig field: the paper's value, and the tiny
    profile's where TINY_OVERRIDES changes it."""
    paper = PPOConfig.__dataclass_fields__[name].default
    text = f"default: {paper}"
    if name in TINY_OVERRIDES and TINY_OVERRIDES[name] != paper:
        text += f" (tiny profile: {TINY_OVERRIDES[name]})"
    return text


def baseline_default(name: str) -> str:
    """The same for a baseline's setting (dareu.methods.defaults: most methods share one
    budget per profile; the methods with their own are named)."""
    from dareu.methods.defaults import DEFAULTS, PAPER, TINY
    from dareu.methods.trainer import UnlearnConfig

    if hasattr(PAPER, name):
        paper, tiny = getattr(PAPER, name), getattr(TINY, name)
        own = [m for m, d in DEFAULTS.items() if (getattr(d.paper, name), getattr(d.tiny, name))
               != (paper, tiny)]  # fmt: skip
    else:
        paper = tiny = UnlearnConfig.__dataclass_fields__[name].default
        paper = tiny = "all-linear" if paper is None and name == "lora_targets" else paper
        own = []
    text = f"default: {paper}"
    if tiny != paper:
        text += f" (tiny profile: {tiny})"
    if own:
        text += f"; {', '.join(sorted(own))}: their own (dareu.methods.defaults)"
    return text


def shared_help(what: str, name: str) -> str:
    """Help of an optimisation flag every method shares: the value DareU and the baselines use."""
    return f"{what}. DareU {dareu_default(name)}. Baselines {baseline_default(name)}"


def add_shared(p: argparse.ArgumentParser) -> None:
    """Flags every method shares: model, data, forget request, output, seed, precision.

    Every default is None so that a --config file can set it and the flag still wins;
    the real defaults are JobConfig's and the method profile's.
    """
    g = p.add_argument_group("job (every method)")
    add = g.add_argument
    add("--config", default=None, help="YAML file of JobConfig / PPOConfig fields (flags win)")
    add("--method", default=None, help="dareu (default) or a baseline name, e.g. npo")
    add("--benchmark", default=None, help="synthetic (default) | tofu | folder | user JSONL")
    add("--forget", default=None, help="forget split (forget10) or owners/ids a,b,...")
    add("--tofu-dir", default=None, help="local TOFU folder")
    add("--tofu-authors", type=tofu_authors, default=None,
        help="TOFU only: keep the forget request's authors and this many retain authors, "
        "drawn with --seed; 'all' keeps every author (default: 20 with the tiny model, "
        "all with --model)")  # fmt: skip
    add("--idk-path", default=None, help="refusal answers, one per line (IdK methods)")
    add("--model", default=None, help="original model folder (default: the tiny original)")
    add("--retain-model", default=None, help="retain model folder (for ToW, forget quality)")
    add(
        "--attributor",
        default=None,
        help="classifier[:PATH] (default) | ngram[:N] | embedding:PATH | max(...) | mean(...)",
    )
    add("--format", dest="fmt", default=None, help="prompt format: plain (default) | llama2 | chat")
    add("--seed", type=int, default=None, help="run seed (default 0)")
    add("--dtype", default=None, help="auto (default) | bf16 | fp16 | fp32")
    add("--rounds", type=int, default=None, help="sequential forget requests (default 1)")
    add(
        "--cumulative-rounds",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --rounds: train each round on every request so far (default), or with "
        "--no-cumulative-rounds on the new request only (the paper's literal rounds, which "
        "let later rounds partly undo earlier ones; docs/dareu.md)",
    )
    add("--max-length", type=int, default=None, help="tokens of a retain QA row (default 256)")
    add(
        "--no-distill-general",
        dest="distill_general",
        action="store_false",
        default=None,
        help="distil on the retain split only (not on general_train)",
    )
    add(
        "--pretrain-people",
        type=int,
        default=None,
        help="knowledge world (tiny default only): background people the base is pretrained "
        "on (default 3000; built once per machine per value)",
    )
    add(
        "--profile",
        choices=["tiny", "paper"],
        default=None,
        help="default hyperparameters: tiny (default without --model) or paper (with --model)",
    )


def add_run(p: argparse.ArgumentParser) -> None:
    """Where a run goes and how it runs: folder, checkpoints, logging, threads."""
    g = p.add_argument_group("run (every method)")
    add = g.add_argument
    add("--output", default=None, help="run folder (default: runs/unlearn/<method>-s<seed>-<hash>)")
    add("--resume", action="store_true", default=None, help="continue from the latest checkpoint")
    add("--force", action="store_true", default=None, help="redo the unlearning and its evaluation")
    add("--save-every", type=int, default=None,
        help="checkpoint every N units of each training stage: optimizer steps for the "
        "fine-tunes and baselines, rollout batches for DareU (0: off); --resume continues "
        "the stage that was stopped")  # fmt: skip
    add("--report-to", default=None, help="none (default) | tensorboard")
    add("--no-progress", dest="progress", action="store_false", default=None,
        help="no progress bars")  # fmt: skip
    add("--threads", type=int, default=None,
        help="torch CPU threads per process (default: torch's; 1 on a shared machine)")  # fmt: skip
    add("--stop-after-batches", type=int, default=None, help=argparse.SUPPRESS)


def add_evaluation(p: argparse.ArgumentParser) -> None:
    """How every evaluated model (original, retain, unlearned) is evaluated and audited."""
    g = p.add_argument_group("evaluation (every method)")
    add = g.add_argument
    add("--no-evaluate", dest="evaluate", action="store_false", default=None,
        help="skip the evaluation (and the audit) of every model")  # fmt: skip
    add("--eval-max-new-tokens", type=int, default=None,
        help="tokens generated per evaluated answer; default: 200 (tiny profile: 64)")  # fmt: skip
    add("--eval-batch-size", type=int, default=None, help="generation batch (default 32)")
    add("--eval-max-samples", type=int, default=None, help="cap per evaluated split")
    add(
        "--no-audit",
        dest="audit",
        action="store_false",
        default=None,
        help="skip the forgetting audit (relearn, quantize, in-context probes) of every "
        "evaluated model (docs/evaluation.md)",
    )
    add(
        "--audit-relearn-steps",
        type=int,
        default=None,
        help="fine-tuning steps of the audit's relearning attack (default 20)",
    )
    add(
        "--audit-relearn-lr",
        type=float,
        default=None,
        help="lr of the audit's relearning attack (default: the unlearning lr, 1e-5, on the "
        "paper profile; 1e-4, a tenth of it, on the tiny one)",
    )


def add_task(p: argparse.ArgumentParser) -> None:
    """What a run unlearns: QA, documents' continuations, or both (dareu.data.completion)."""
    g = p.add_argument_group("task (every method)")
    add = g.add_argument
    add("--task", choices=["auto", "qa", "completion", "both"], default=None,
        help="what is unlearned: qa, completion (documents' continuations) or both; auto "
        "(default): qa on the knowledge world and TOFU, every kind the forget request holds "
        "on user data (docs/data.md, 'Completion task')")  # fmt: skip
    add("--prompt-tokens", type=int, default=None,
        help="completion task: a document's first N tokens are the prompt "
        "(default 16)")  # fmt: skip
    add("--continuation-tokens", type=int, default=None,
        help="completion task: the next M tokens are the target, and the most a rollout or "
        "an evaluation continues (default 32)")  # fmt: skip
    add("--retain-doc-share", type=float, default=None,
        help="documents' share of the retain rows when a task keeps both kinds (default: "
        "as many as there are)")  # fmt: skip


def add_optimisation(p: argparse.ArgumentParser) -> None:
    """Optimisation flags every method shares; the help shows DareU's and the baselines'
    defaults, paper and tiny profile."""
    g = p.add_argument_group("optimisation (every method; default: the method's profile value)")
    add = g.add_argument
    add("--lr", type=float, default=None, help=shared_help("AdamW learning rate", "lr"))
    add("--epochs", type=int, default=None,
        help=shared_help("passes over the forget set", "epochs"))  # fmt: skip
    add("--batch-size", type=int, default=None,
        help=shared_help("forget queries (DareU) or rows per step", "batch_size"))  # fmt: skip
    add("--full", dest="lora", action="store_false", default=None,
        help="train all parameters (= lora False; see --lora)")  # fmt: skip
    add("--lora", dest="lora", action="store_true", default=None,
        help=shared_help("train LoRA adapters", "lora"))  # fmt: skip
    add("--lora-r", type=int, default=None, help=shared_help("LoRA rank", "lora_r"))
    add("--lora-alpha", type=int, default=None, help=shared_help("LoRA alpha", "lora_alpha"))
    add("--lora-dropout", type=float, default=None,
        help=shared_help("LoRA dropout", "lora_dropout"))  # fmt: skip
    add("--lora-targets", default=None,
        help=shared_help("comma-separated module names", "lora_targets"))  # fmt: skip
    add("--gradient-checkpointing", action="store_true", default=None,
        help=shared_help("recompute activations in the backward pass (less memory, more "
                         "time)", "gradient_checkpointing"))  # fmt: skip
    add(
        "--hparam",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a baseline's method hyperparameter (repeatable; defaults: dareu.methods.defaults)",
    )


def add_dareu(p: argparse.ArgumentParser) -> None:
    """One flag per PPOConfig field (not already shared), help from the dataclass."""
    g = p.add_argument_group("DareU (PPO with de-attribution rewards)")
    hints = typing.get_type_hints(PPOConfig)
    for f in dataclasses.fields(PPOConfig):
        if f.name in SHARED_PPO:
            continue
        flag = "--" + f.name.replace("_", "-")
        typ = hints[f.name]
        help_ = f"{f.metadata.get('help', '')}; {dareu_default(f.name)}".replace("%", "%%")
        if typ is bool:
            g.add_argument(flag, dest=f.name, default=None, help=help_,
                           action=argparse.BooleanOptionalAction)  # fmt: skip
        elif get_args(typ):  # a Literal
            g.add_argument(flag, dest=f.name, default=None, choices=get_args(typ), help=help_)
        else:
            g.add_argument(flag, dest=f.name, default=None, type=typ, help=help_)


def build_parser(prog: str = "dareu unlearn") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The tiny profile (no --model) changes these paper values: "
        + ", ".join(f"{k}={v}" for k, v in TINY_OVERRIDES.items()),
    )
    add_shared(p)
    add_run(p)
    add_evaluation(p)
    add_task(p)
    add_optimisation(p)
    add_dareu(p)
    return p


def parse(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def read_config_file(path: str) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--config: {p} is not a file")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"--config: {p} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"--config: {p} must hold a mapping of settings")
    known = {f.name for f in dataclasses.fields(JobConfig)} | {
        f.name for f in dataclasses.fields(PPOConfig)
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"--config: {p} has unknown settings {unknown}")
    hints = {**typing.get_type_hints(JobConfig), **typing.get_type_hints(PPOConfig)}
    for key, value in data.items():
        if key in hints and value is not None:
            data[key] = config_value(p, key, value, hints[key])
    return data


def config_value(path: Path, key: str, value: Any, typ: Any) -> Any:
    """A YAML value checked against its field's type (int, float, bool, str, a Literal,
    Optional of these), so `method: 5` fails here and not deep inside the run."""
    args = get_args(typ)
    if type(None) in args:  # X | None
        (typ,) = [t for t in args if t is not type(None)]
        args = get_args(typ)
    if typing.get_origin(typ) is typing.Literal:
        if value not in args:
            raise ValueError(f"--config: {path}: {key} must be one of {list(args)}, got {value!r}")
        return value
    if typ not in (int, float, bool, str):
        return value
    ok = isinstance(value, typ) or (typ is float and isinstance(value, int))
    if not ok or (typ in (int, float) and isinstance(value, bool)):
        hint = " (YAML reads 1e-6 as text; write 1.0e-6)" if typ is float else ""
        raise ValueError(f"--config: {path}: {key} must be a {typ.__name__}, got {value!r}{hint}")
    return typ(value)


def build_configs(a: argparse.Namespace) -> tuple[JobConfig, PPOConfig]:
    """profile defaults < --config file < command-line flags."""
    given = read_config_file(a.config) if a.config else {}
    given.update(
        {k: v for k, v in vars(a).items() if v is not None and k not in ("hparam", "config")}
    )
    job_fields = {f.name for f in dataclasses.fields(JobConfig)}
    job = JobConfig(**{k: v for k, v in given.items() if k in job_fields})
    profile = job.resolved_profile
    if "eval_max_new_tokens" not in given:
        job.eval_max_new_tokens = 64 if profile == "tiny" else 200
    ppo_names = {f.name for f in dataclasses.fields(PPOConfig)}
    ppo_given = {k: v for k, v in given.items() if k in ppo_names}
    ppo = tiny_config(**ppo_given) if profile == "tiny" else paper_config(**ppo_given)
    return job, ppo


def baseline_settings(a: argparse.Namespace) -> dict[str, Any]:
    """--hparam KEY=VALUE pairs and the shared optimisation flags a user set, for a baseline."""
    import json

    hp: dict[str, Any] = {}
    for item in a.hparam:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--hparam {item!r}: expected KEY=VALUE")
        try:
            hp[key] = json.loads(value)
        except json.JSONDecodeError:
            hp[key] = value
    train = {
        k: getattr(a, k) for k in sorted(SHARED_PPO | {"max_length"}) if getattr(a, k) is not None
    }
    if "lora_targets" in train:
        train["lora_targets"] = tuple(t for t in train["lora_targets"].split(",") if t)
    return {"hparams": hp, "train": train}


def check_baseline(method: str, baseline: dict[str, Any]) -> None:
    """Validate a baseline's --hparam and shared flags now, before any compute: run_job
    only validates them when it reaches the method, after data, models and attributor."""
    from dareu.methods.trainer import UnlearnConfig

    UnlearnConfig(method=method, hparams=baseline["hparams"], **baseline["train"]).validate()


def main(argv: list[str] | None = None) -> int:
    main_process_print_first()
    a = parse(argv)
    try:
        from dareu.pipeline import run_job
        from dareu.train.common import set_threads
        from dareu.unlearners import UNLEARNERS

        set_threads(a.threads)
        job, ppo = build_configs(a)
        # A registered unlearner (DareU) takes its settings from PPOConfig; any other name
        # is a loss on the shared trainer with --hparam and the shared optimisation flags.
        baseline = baseline_settings(a) if job.method.lower() not in UNLEARNERS else None
        if baseline is not None:
            check_baseline(job.method, baseline)
        run_job(job, ppo, baseline=baseline, stop_after_batches=a.stop_after_batches)
    except (ValueError, FileNotFoundError) as err:  # bad configuration or input
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingStopped as err:  # a stop_after_* hook (tests, benchmarks)
        print(f"stopped: {err}", file=sys.stderr)
        return 3
    return 0
