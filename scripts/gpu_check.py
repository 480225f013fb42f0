"""DareU at real shapes on a GPU, with random weights: time per PPO iteration, generation
tokens/s and peak GPU memory, written to one JSON file.

Nothing is downloaded (the GPU host may have no network): every model is built from a
config with random weights, the data is the embedded synthetic knowledge world
(`load_benchmark("synthetic")`), and the tokenizer is the tiny BPE trained on that world's
text, padded with never-produced special filler tokens up to the model's vocabulary
(32,000 at the real shapes), so the embedding, LM head and logits keep their real sizes and
every sampled id decodes (fillers decode to nothing). Random weights write junk text and
rarely sample EOS, so nearly every response runs to `max_new_tokens`: the timings are an
upper bound for that length, and the attribution scores mean nothing.

Parts, each in its own child process with its own time limit (a failing part does not stop
the others; the JSON is rewritten after each part):
  a           Llama-2-7B shapes, bf16, LoRA, the paper's PPO batch (32 forget queries x 2
              samples, 20 PPO steps, distillation on 16 retain rows), a TinyLlama-1.1B-shaped
              classifier attributor; 1 process
  b           the same at TinyLlama-1.1B shapes, 1 process
  b_fsdp2     b under FSDP2 (configs/accelerate_fsdp.yaml) on every GPU, if more than one
  c_zero3     b under DeepSpeed ZeRO-3 (configs/accelerate_deepspeed_zero3.yaml), 1 process

    python scripts/gpu_check.py --out gpu.json        # a GPU host, under 8 minutes
    python scripts/gpu_check.py --smoke --out s.json  # toy shapes on the CPU, the same code

docs/dareu.md ("GPU check") says how to run it on a host without network.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GIB = float(1 << 30)
PAPER = {
    "source": "DareU paper (arXiv 2605.30919), Table 4",
    "setting": "DareU, Llama2-7B, TOFU",
    "run_s": 471,
    "peak_memory_gb": 69,
    "note": "a whole unlearning run on the paper's hardware; this check times single PPO "
    "iterations, so compare iteration_s_warm x the run's rollout batches "
    "(projected_run_s: TOFU forget01/05/10 = 40/200/400 queries, 1 epoch)",
}
TOFU_QUERIES = {"forget01": 40, "forget05": 200, "forget10": 400}
LLAMA2_7B = {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 32, "intermediate_size": 11008, "vocab_size": 32000,
             "max_position_embeddings": 4096}  # fmt: skip
TINYLLAMA_1B = {"hidden_size": 2048, "num_hidden_layers": 22, "num_attention_heads": 32,
                "num_key_value_heads": 4, "intermediate_size": 5632, "vocab_size": 32000,
                "max_position_embeddings": 2048}  # fmt: skip
# vocab_size 0: the trained tokenizer's own size (about 2,200 tokens), to keep CPU logits small.
TOY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
       "num_key_value_heads": 1, "intermediate_size": 64, "vocab_size": 0,
       "max_position_embeddings": 512}  # fmt: skip
PART_KEYS = ("a", "b", "b_fsdp2", "c_zero3")
# Per-part limits on one H100/H200 (estimated: a about 100 s, b about 40 s); --budget-s
# caps all parts together, so the whole check stays under 8 minutes.
TIMEOUTS_S = {"a": 210, "b": 100, "b_fsdp2": 120, "c_zero3": 120}
CONFIG_FILES = {"b_fsdp2": "accelerate_fsdp.yaml", "c_zero3": "accelerate_deepspeed_zero3.yaml"}


@dataclass(frozen=True)
class Part:
    key: str
    title: str
    policy: dict[str, int]
    attributor: dict[str, int]
    timeout_s: int
    sharding: str  # the Accelerate distributed type the part must run under


@dataclass(frozen=True)
class Budget:
    """The PPO work of one part: `batches` rollout batches of the paper's shape."""

    batches: int
    batch_size: int
    samples_per_query: int
    ppo_steps: int
    max_new_tokens: int
    distill_batch_size: int
    lora_r: int
    gradient_checkpointing: bool


def make_parts(smoke: bool) -> dict[str, Part]:
    big, one = (TOY, TOY) if smoke else (LLAMA2_7B, TINYLLAMA_1B)
    limits = {"a": 120, "b": 120, "b_fsdp2": 120, "c_zero3": 120} if smoke else TIMEOUTS_S
    titles = {"a": "Llama-2-7B shapes, 1 process", "b": "TinyLlama-1.1B shapes, 1 process",
              "b_fsdp2": "TinyLlama-1.1B shapes, FSDP2, every GPU",
              "c_zero3": "TinyLlama-1.1B shapes, DeepSpeed ZeRO-3, 1 process"}  # fmt: skip
    sharding = {"a": "NO", "b": "NO", "b_fsdp2": "FSDP", "c_zero3": "DEEPSPEED"}
    return {k: Part(k, titles[k] + (" (toy shapes: --smoke)" if smoke else ""),
                    big if k == "a" else one, one, limits[k], sharding[k])
            for k in PART_KEYS}  # fmt: skip


def make_budget(a: argparse.Namespace) -> Budget:
    if a.smoke:
        return Budget(batches=2, batch_size=4, samples_per_query=2, ppo_steps=2,
                      max_new_tokens=8, distill_batch_size=4, lora_r=a.lora_r,
                      gradient_checkpointing=a.gradient_checkpointing)  # fmt: skip
    return Budget(batches=a.batches, batch_size=32, samples_per_query=2, ppo_steps=a.ppo_steps,
                  max_new_tokens=a.max_new_tokens, distill_batch_size=16, lora_r=a.lora_r,
                  gradient_checkpointing=a.gradient_checkpointing)  # fmt: skip


# ----------------------------------------------------------------------------------------
# the child: one part, in this process (or in each process of an accelerate launch)
# ----------------------------------------------------------------------------------------
def make_tokenizer(bench: Any, vocab: int) -> Any:
    """The tiny BPE trained on the world's text, padded with special filler tokens up to
    `vocab` (0: no padding). Fillers are never produced by encoding and decode to nothing,
    so sampled ids of a random model are all valid and the text stays the world's."""
    from dareu.models.tiny import benchmark_corpus, train_tokenizer

    tok = train_tokenizer(benchmark_corpus(bench), vocab or 32000)
    if vocab and len(tok) < vocab:
        tok.add_tokens([f"<fill_{i}>" for i in range(vocab - len(tok))], special_tokens=True)
    if vocab and len(tok) != vocab:
        raise RuntimeError(f"tokenizer has {len(tok)} tokens, wanted {vocab}")
    return tok


def shared_tokenizer(state: Any, bench: Any, vocab: int) -> Any:
    """The main process trains the tokenizer and saves it; the others load that copy, so
    every process tokenizes the prompts identically (call inside main_process_first)."""
    from dareu.cache import output_root
    from dareu.models.loading import load_tokenizer

    folder = output_root() / f"gpu-check-tokenizer-{vocab}"
    if not state.is_main_process:
        return load_tokenizer(folder)
    tok = make_tokenizer(bench, vocab)
    if state.num_processes > 1:
        tok.save_pretrained(folder)
    return tok


def llama_config(shape: dict[str, int], tok: Any, **extra: Any) -> Any:
    from transformers import LlamaConfig

    kw: dict[str, Any] = {k: v for k, v in shape.items() if k != "vocab_size"}
    return LlamaConfig(**kw, vocab_size=len(tok), tie_word_embeddings=False,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id, **extra)  # fmt: skip


def random_model(cls: Any, config: Any, dtype: Any, device: Any, zero3: bool) -> Any:
    """Random weights, built on `device` (under ZeRO-3 DeepSpeed's zero.Init partitions
    them as it does for `from_pretrained`)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the same weights on every process
        ctx = contextlib.nullcontext() if zero3 else torch.device(device)
        with ctx:
            model = cls._from_config(config, dtype=dtype)
    return model.eval()


def n_params(model: Any, trainable: bool = False) -> int:
    """Parameter count, also of ZeRO-3 partitions (`ds_numel`)."""
    ps = [p for p in model.parameters() if p.requires_grad or not trainable]
    return int(sum(getattr(p, "ds_numel", p.numel()) for p in ps))


def make_attributor(shape: dict[str, int], tok: Any, owners: list[str], device: Any,
                    dtype: Any) -> Any:  # fmt: skip
    """A ClassifierAttributor over `owners` with random weights (before the Accelerator, so
    ZeRO-3 does not partition it: the attributor is not trained)."""
    from transformers import LlamaForSequenceClassification

    from dareu.attribution import ClassifierAttributor

    cfg = llama_config(shape, tok, num_labels=len(owners),
                       id2label=dict(enumerate(owners)),
                       label2id={o: i for i, o in enumerate(owners)})  # fmt: skip
    model = random_model(LlamaForSequenceClassification, cfg, dtype, device, zero3=False)
    return ClassifierAttributor(model, tok, owners, temperature=1.0, batch_size=32)


def policy_loader(shape: dict[str, int], tok: Any, acc: Any, info: dict[str, Any]) -> Any:
    """Replaces `load_model` in the trainer: a random Llama instead of a checkpoint."""
    from transformers import LlamaForCausalLM

    from dareu.models.loading import resolve_dtype
    from dareu.train.common import is_zero3

    def load(_path: Any, *, dtype: Any = "auto", **_kw: Any) -> tuple[Any, Any]:
        t = time.perf_counter()
        model = random_model(LlamaForCausalLM, llama_config(shape, tok), resolve_dtype(dtype),
                             acc.device, is_zero3(acc))  # fmt: skip
        for key in ("pad_token_id", "eos_token_id", "bos_token_id"):
            setattr(model.generation_config, key, getattr(tok, key))
        info["policy_params"] = n_params(model)
        info["policy_build_s"] = round(time.perf_counter() - t, 2)
        return model, tok

    return load


def instrument(tr: Any, table: dict[str, float], sync: Any) -> None:
    """Time the trainer's phases (CUDA-synchronised) into `table`, cumulatively."""

    def timed(key: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                sync()
                table[key] = table.get(key, 0.0) + time.perf_counter() - t

        return wrapper

    for name, key in (("sample_responses", "generation"), ("forward_rollouts", "logprob_value_ref"),
                      ("score_rollouts", "attribution"), ("update", "update")):  # fmt: skip
        setattr(tr, name, timed(key, getattr(tr, name)))
    setattr(tr, "save", lambda st, model_path, final_dir, train_s: final_dir)  # noqa: B010


def ppo_config(b: Budget) -> Any:
    from dareu.ppo.config import PPOConfig

    return PPOConfig(batch_size=b.batch_size, samples_per_query=b.samples_per_query,
                     ppo_steps=b.ppo_steps, max_new_tokens=b.max_new_tokens,
                     distill_batch_size=b.distill_batch_size, lora_r=b.lora_r,
                     lora_alpha=2 * b.lora_r, epochs=1,
                     gradient_checkpointing=b.gradient_checkpointing)  # fmt: skip


def iteration_row(rec: dict[str, Any], phases: dict[str, float]) -> dict[str, Any]:
    tokens = float(rec["resp_len"]) * int(rec["n_rollouts"])
    gen = phases.get("generation", 0.0)
    phases = {**phases, "other": max(0.0, float(rec["batch_s"]) - sum(phases.values()))}
    return {"iteration_s": rec["batch_s"], "rollouts": rec["n_rollouts"],
            "resp_len_mean": round(float(rec["resp_len"]), 2), "generated_tokens": int(tokens),
            "generation_tokens_per_s": round(tokens / gen, 1) if gen > 0 else None,
            "ppo_steps_done": rec.get("ppo_steps_done"),
            "phases_s": {k: round(v, 3) for k, v in phases.items()}}  # fmt: skip


def measure(part: Part, b: Budget) -> dict[str, Any]:
    """Build everything, run `b.batches` rollout batches of DareU, return the figures."""
    import torch

    import dareu.ppo.trainer as tr
    from dareu.data import load_benchmark
    from dareu.models.loading import resolve_dtype
    from dareu.train.common import partial_state, setup_accelerator

    t0 = time.perf_counter()
    state = partial_state()
    cuda = state.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with state.main_process_first():
        bench = load_benchmark("synthetic")
        tok = shared_tokenizer(state, bench, part.policy["vocab_size"])
    dtype = resolve_dtype("auto")
    attributor = make_attributor(part.attributor, tok, list(bench.owners), state.device, dtype)
    acc = setup_accelerator("auto")
    if acc.distributed_type.name != part.sharding:
        raise RuntimeError(f"Accelerate runs {acc.distributed_type.name}, this part needs "
                           f"{part.sharding} (check the launcher and its config file)")  # fmt: skip
    info: dict[str, Any] = {"tokenizer_vocab": len(tok),
                            "attributor_params": n_params(attributor.model)}  # fmt: skip
    setattr(tr, "load_model", policy_loader(part.policy, tok, acc, info))  # noqa: B010
    phases: dict[str, float] = {}
    instrument(tr, phases, sync)
    rows: list[dict[str, Any]] = []

    def on_batch(rec: dict[str, Any]) -> None:
        rows.append(iteration_row(rec, phases))
        phases.clear()

    def on_update(core: Any) -> None:
        if "trainable_params" not in info:
            info["trainable_params"] = n_params(core, trainable=True)

    n = b.batches * b.batch_size
    forget = [bench.forget[i % len(bench.forget)] for i in range(n)]
    retain = [*bench.retain, *bench.general_train]
    with tempfile.TemporaryDirectory() as out:
        run = tr.RunSettings(out_dir=Path(out), fmt="llama2", progress=False)
        t_train = time.perf_counter()
        tr.train_dareu(Path(out), forget, retain, attributor, ppo_config(b), run, acc,
                       on_batch=on_batch, on_update=on_update)  # fmt: skip
    info["setup_s"] = round(t_train - t0, 2)
    info["train_s"] = round(time.perf_counter() - t_train, 2)
    return summarize(acc, part, b, rows, info, str(dtype))


def memory(acc: Any) -> dict[str, Any]:
    """Peak GPU memory of every process (max_memory_allocated / reserved), and peak RSS."""
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    if acc.device.type != "cuda":
        return {"peak_memory_allocated_bytes": None, "peak_memory_note": "no CUDA",
                "peak_rss_gib": round(rss / GIB, 3)}  # fmt: skip
    mine = torch.tensor([torch.cuda.max_memory_allocated(acc.device),
                         torch.cuda.max_memory_reserved(acc.device), rss],
                        dtype=torch.float64, device=acc.device)  # fmt: skip
    gathered = acc.gather(mine[None]) if acc.num_processes > 1 else mine[None]
    return memory_figures(gathered.reshape(-1, 3).tolist())


def memory_figures(every: list[list[float]]) -> dict[str, Any]:
    """[allocated, reserved, rss] bytes per process -> the JSON's memory fields."""
    peak = max(r[0] for r in every)
    return {"peak_memory_allocated_bytes": int(peak), "peak_memory_gib": round(peak / GIB, 2),
            "peak_memory_gb": round(peak / 1e9, 2),
            "peak_memory_reserved_gib": round(max(r[1] for r in every) / GIB, 2),
            "peak_memory_allocated_gib_per_process": [round(r[0] / GIB, 2) for r in every],
            "peak_rss_gib": round(max(r[2] for r in every) / GIB, 3)}  # fmt: skip


def summarize(acc: Any, part: Part, b: Budget, rows: list[dict[str, Any]],
              info: dict[str, Any], dtype: str) -> dict[str, Any]:  # fmt: skip
    mem = memory(acc)  # a collective: every process
    if not acc.is_main_process:
        return {"status": "ok"}
    if not rows:
        raise RuntimeError("no rollout batch finished")
    warm = rows[-1]
    batches_per_run = {k: -(-q // b.batch_size) for k, q in TOFU_QUERIES.items()}
    return {
        "status": "ok",
        "title": part.title,
        "processes": acc.num_processes,
        "distributed_type": str(acc.distributed_type),
        "mixed_precision": str(acc.mixed_precision),
        "dtype": dtype,
        "shapes": {"policy": part.policy, "attributor": part.attributor},
        "config": asdict(b),
        **info,
        "iterations": rows,
        "iteration_s": [r["iteration_s"] for r in rows],
        "iteration_s_warm": warm["iteration_s"],
        "generation_tokens_per_s": warm["generation_tokens_per_s"],
        "projected_run_s": {
            k: round(n * warm["iteration_s"], 1) for k, n in batches_per_run.items()
        },
        **mem,
    }


def one_line(err: BaseException | str) -> str:
    text = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    first = next((x.strip() for x in str(text).splitlines() if x.strip()), "unknown error")
    return first[:300]


def worker(a: argparse.Namespace) -> int:
    """Child entry point: measure one part, the main process writes `--part-out`."""
    part, b = make_parts(a.smoke)[a.worker], make_budget(a)
    try:
        result = measure(part, b)
    except Exception as err:
        result = {"status": f"failed: {one_line(err)}"}
        import traceback

        traceback.print_exc()
    if int(os.environ.get("RANK", "0")) == 0:
        write_json(Path(a.part_out), result)
    return 0 if result["status"] == "ok" else 1


# ----------------------------------------------------------------------------------------
# the parent: environment, one child per part, the JSON
# ----------------------------------------------------------------------------------------
def version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


PROBE = """import json, torch
n = torch.cuda.device_count() if torch.cuda.is_available() else 0
env = {"device": torch.cuda.get_device_name(0) if n else "cpu", "cuda_devices": n,
       "cuda": torch.version.cuda, "deepspeed_import_error": None}
try:
    import deepspeed
except Exception as err:
    env["deepspeed_import_error"] = (type(err).__name__ + ": " + str(err)).splitlines()[0][:300]
print(json.dumps(env))"""


def environment(smoke: bool) -> dict[str, Any]:
    """Device (asked in a child, so this process holds no CUDA context while the parts run)
    and versions; with --smoke the children see no GPU."""
    env: dict[str, Any] = {"device": "cpu", "cuda_devices": 0}
    if not smoke:
        try:
            probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True,
                                   text=True, check=True, timeout=120)  # fmt: skip
            env = json.loads(probe.stdout.strip().splitlines()[-1])
        except (subprocess.SubprocessError, ValueError, IndexError) as err:
            env["probe_error"] = one_line(err)  # the parts then run as on a CPU host
    names = ("torch", "transformers", "accelerate", "peft", "deepspeed", "dareu",
             "dareu-reward-core")  # fmt: skip
    env["versions"] = {n: version(n) for n in names}
    env["python"] = platform.python_version()
    return env


def config_file(key: str, config_dir: str | None) -> Path | None:
    """configs/<file> from --config-dir, beside scripts/, or inside the installed package."""
    name = CONFIG_FILES[key]
    dirs = [Path(config_dir)] if config_dir else []
    dirs.append(REPO / "configs")
    spec = importlib.util.find_spec("dareu")
    if spec is not None and spec.origin:
        dirs.append(Path(spec.origin).parent / "configs")
    return next((d / name for d in dirs if (d / name).is_file()), None)


def skip_reason(key: str, env: dict[str, Any], a: argparse.Namespace) -> str | None:
    if key not in a.parts:
        return "not selected (--parts)"
    n = env["cuda_devices"]
    if n == 0 and not a.smoke:
        return "no CUDA (real shapes need a GPU; --smoke runs toy shapes on the CPU)"
    if key in CONFIG_FILES and n == 0:
        return "no CUDA" + (" (--smoke runs on the CPU)" if a.smoke else "")
    if key == "b_fsdp2" and n < 2:
        return f"FSDP2 needs more than one GPU, {n} present"
    if key == "c_zero3" and importlib.util.find_spec("deepspeed") is None:
        return "deepspeed is not importable: not installed (pip install deepspeed)"
    if key == "c_zero3" and env.get("deepspeed_import_error"):
        return f"deepspeed is not importable: {env['deepspeed_import_error']}"
    if key in CONFIG_FILES and config_file(key, a.config_dir) is None:
        return f"configs/{CONFIG_FILES[key]} not found (pass --config-dir)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_command(key: str, env: dict[str, Any], a: argparse.Namespace, out: Path) -> list[str]:
    tail = [str(Path(__file__).resolve()), "--worker", key, "--part-out", str(out),
            "--batches", str(a.batches), "--ppo-steps", str(a.ppo_steps),
            "--max-new-tokens", str(a.max_new_tokens), "--lora-r", str(a.lora_r),
            *(["--smoke"] if a.smoke else []),
            *(["--gradient-checkpointing"] if a.gradient_checkpointing else [])]  # fmt: skip
    if key not in CONFIG_FILES:
        return [sys.executable, *tail]
    procs = env["cuda_devices"] if key == "b_fsdp2" else 1
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(config_file(key, a.config_dir)), "--num_processes", str(procs),
            "--main_process_port", str(free_port()), *tail]  # fmt: skip


def run_child(cmd: list[str], timeout: float, log: Path, env: dict[str, str]) -> str | None:
    """Run one part; None when it exited 0, else why not. The whole process group is
    killed on timeout (accelerate launch starts grandchildren)."""
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return f"timed out after {timeout:.0f} s (per-part limit)"
    return None if rc == 0 else f"exit code {rc}"


def error_line(log_text: str) -> str | None:
    """The last `SomethingError: message` line of a child's output."""
    line = r"^(?:\[rank\d+\]:)?\s*([\w.]*(?:Error|Exception|Interrupt)\b:?.*)$"
    hits = re.findall(line, log_text, re.M)
    hits = [h for h in hits if "ChildFailedError" not in h]  # torchrun's own summary
    return hits[-1].strip()[:300] if hits else None


def run_part(key: str, part: Part, env: dict[str, Any], a: argparse.Namespace,
             work: Path, deadline: float) -> dict[str, Any]:  # fmt: skip
    """One part in a child: its JSON, or a failed status with the log's tail."""
    left = deadline - time.monotonic()
    if left < 30:
        return {"status": "skipped: time budget spent (--budget-s)"}
    out, log = work / f"{key}.json", work / f"{key}.log"
    cmd = child_command(key, env, a, out)
    child_env = {**os.environ, "DAREU_HOME": str(work / "home"), "TOKENIZERS_PARALLELISM":
                 "false", "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1",
                 "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    if a.smoke:
        child_env["CUDA_VISIBLE_DEVICES"] = ""
    t = time.perf_counter()
    why = run_child(cmd, min(part.timeout_s, left), log, child_env)
    try:
        result: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    except ValueError:
        result = {}
    text = log.read_text(errors="replace") if log.is_file() else ""
    if "status" not in result:
        timed_out = why is not None and why.startswith("timed out")
        result["status"] = f"failed: {(not timed_out and error_line(text)) or why or 'no result'}"
    elif why is not None and result["status"] == "ok":
        result["exit"] = why  # measured, then failed on the way out
    result["wall_s"] = round(time.perf_counter() - t, 1)
    result["command"] = " ".join(cmd[1:])
    if result["status"] != "ok":
        result["log_tail"] = text[-4000:]
    return result


def write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


def check(a: argparse.Namespace) -> dict[str, Any]:
    """Every part in turn; the JSON is written after each one."""
    t0, deadline = time.perf_counter(), time.monotonic() + a.budget_s
    env = environment(a.smoke)
    doc: dict[str, Any] = {
        "weights": "random",
        "note": "models built from configs with random weights (no download): junk text, "
        "near-uniform attribution; timings only. Data: the embedded synthetic world; "
        "tokenizer: its tiny BPE padded with special filler tokens to the model vocab. The "
        "attributor runs on the GPU in the model dtype (the job itself leaves it on the CPU "
        "in fp32: dareu.pipeline.load_job_attributor passes no device).",
        "smoke": a.smoke, **env, "paper_reference": PAPER, "parts": {},
    }  # fmt: skip
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    try:
        for key, part in make_parts(a.smoke).items():
            reason = skip_reason(key, env, a)
            print(f"[gpu_check] part {key}: {part.title} ...", file=sys.stderr, flush=True)
            try:
                res = {"status": f"skipped: {reason}"} if reason else run_part(
                    key, part, env, a, work, deadline)  # fmt: skip
            except Exception as err:  # this process's error: the next part still runs
                res = {"status": f"failed: {one_line(err)}"}
            doc["parts"][key] = {"title": part.title, **res}
            print(f"[gpu_check] part {key}: {res['status']}", file=sys.stderr, flush=True)
            doc["total_wall_s"] = round(time.perf_counter() - t0, 1)
            write_json(out, doc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return doc


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="gpu_check.json", help="the JSON written (default %(default)s)")
    p.add_argument("--smoke", action="store_true", help="toy shapes on the CPU (the test)")
    p.add_argument("--parts", default=",".join(PART_KEYS), help="comma-separated: a,b,b_fsdp2,"
                   "c_zero3 (default all)")  # fmt: skip
    p.add_argument("--batches", type=int, default=2, help="rollout batches per part")
    p.add_argument("--ppo-steps", type=int, default=20, help="PPO steps per batch (paper: 20)")
    p.add_argument("--max-new-tokens", type=int, default=64,
                   help="response length (PPOConfig's paper value: 64)")  # fmt: skip
    p.add_argument("--lora-r", type=int, default=8, help="LoRA rank (alpha = 2 r)")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--budget-s", type=float, default=460, help="all parts together")
    p.add_argument("--config-dir", default=None, help="folder with configs/accelerate_*.yaml")
    p.add_argument("--worker", choices=PART_KEYS, help=argparse.SUPPRESS)
    p.add_argument("--part-out", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.parts = [x.strip() for x in a.parts.split(",") if x.strip()]
    bad = [x for x in a.parts if x not in PART_KEYS]
    if bad or min(a.batches, a.ppo_steps, a.max_new_tokens, a.lora_r) < 1:
        p.error(f"unknown parts {bad}" if bad else "sizes must be >= 1")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.worker:
        return worker(a)
    doc = check(a)
    print(json.dumps({k: v["status"] for k, v in doc["parts"].items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
