"""Load any local Hugging Face causal LM (plus an optional PEFT adapter) the safe way.

Every stage takes a plain folder path, so the tiny default and a user's Llama-2-7b TOFU
model go through the same function. Weights are read from safetensors only: a pickle
(`pytorch_model.bin`) can run arbitrary code when loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from dareu.cache import atomic_write_json, content_hash, hash_files

DTYPES: dict[str, torch.dtype] = {
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
    "fp32": torch.float32,
}
DTYPE_NAMES = ("auto", *DTYPES)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


class ModelLoadError(ValueError):
    """A model or adapter path that cannot be loaded; the message names the path."""


def resolve_dtype(dtype: str | torch.dtype = "auto") -> torch.dtype:
    """`auto` means bf16 where the GPU supports it, else fp32 (CPU bf16 is slow and lossy)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPE_NAMES)}")
    return DTYPES[dtype]


def dtype_name(dtype: torch.dtype) -> str:
    for name, d in DTYPES.items():
        if d == dtype:
            return name
    raise ValueError(f"unsupported dtype {dtype}")


MODEL_WEIGHTS = "model.safetensors"
MODEL_INDEX = "model.safetensors.index.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
SAFETENSORS_MAX_HEADER = 100 << 20  # the safetensors format's own limit


def safetensors_problem(path: Path) -> str | None:
    """None if `path` is a whole safetensors file, else what is wrong with it; reads only
    the header, so a corrupt or truncated file is named before any compute."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return "too short to be a safetensors file"
            n = int.from_bytes(head, "little")
            if n > min(SAFETENSORS_MAX_HEADER, size - 8):
                return "corrupt safetensors header (header length past the end of the file)"
            header = json.loads(f.read(n))
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "corrupt safetensors header (not JSON)"
    if not isinstance(header, dict):
        return "corrupt safetensors header (not a JSON object)"
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2):
            return f"corrupt safetensors header (tensor {name!r} has no data_offsets)"
        end = max(end, int(offsets[1]))
    if 8 + n + end > size:
        return f"truncated: {size} bytes, the header needs {8 + n + end}"
    return None


def weight_files(path: Path, adapter: bool) -> list[Path]:
    """The safetensors files the loader will read from `path` (transformers with
    use_safetensors=True, or PEFT for an adapter); ModelLoadError when they are missing,
    so a stray *.safetensors beside pickle weights does not pass."""
    what = "adapter folder" if adapter else "model folder"
    if adapter:
        names = [ADAPTER_WEIGHTS] if (path / ADAPTER_WEIGHTS).is_file() else []
    elif (path / MODEL_WEIGHTS).is_file():
        names = [MODEL_WEIGHTS]
    elif (path / MODEL_INDEX).is_file():
        try:
            weight_map = json.loads((path / MODEL_INDEX).read_text())["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ModelLoadError(f"{path / MODEL_INDEX}: not a valid index ({err})") from None
        bad = [n for n in names if not str(n).endswith(".safetensors")]
        missing = [n for n in names if not (path / n).is_file()]
        if bad or missing or not names:
            raise ModelLoadError(
                f"{path / MODEL_INDEX}: lists {'non-safetensors' if bad else 'missing'} "
                f"shards {(bad or missing)[:3]}"
            )
    else:
        names = []
    if names:
        return [path / n for n in names]
    expected = ADAPTER_WEIGHTS if adapter else f"{MODEL_WEIGHTS} or {MODEL_INDEX}"
    pickles = sorted(p.name for p in path.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise ModelLoadError(
            f"{what} {path} has pickle weights ({', '.join(pickles)}) but no {expected}; "
            "DareU loads safetensors only, because unpickling can run arbitrary code. Convert "
            "the folder once in a trusted environment, e.g. load it with transformers and "
            "call save_pretrained(..., safe_serialization=True)."
        )
    raise ModelLoadError(f"{what} {path} has no weights: no {expected} in it")


def _check_weights(path: Path, adapter: bool) -> None:
    for f in weight_files(path, adapter):
        problem = safetensors_problem(f)
        if problem is not None:
            raise ModelLoadError(f"weights file {f}: {problem}")


def check_model_path(path: str | Path) -> Path:
    """Validate a checkpoint folder before any compute; return it resolved.

    A folder is a full checkpoint (config.json + safetensors weights) or a PEFT adapter
    folder (adapter_config.json + adapter_model.safetensors) whose base is a local folder.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelLoadError(f"model path {p} does not exist")
    if not p.is_dir():
        raise ModelLoadError(
            f"model path {p} is a file; expected a Hugging Face checkpoint folder "
            "(config.json + *.safetensors + tokenizer files)"
        )
    p = p.resolve()
    for name in ("config.json", "adapter_config.json", "tokenizer.json"):
        _check_json(p / name)
    if (p / "config.json").is_file():
        _check_weights(p, adapter=False)
        return p
    if (p / "adapter_config.json").is_file():
        check_model_path(adapter_base_path(p))
        _check_weights(p, adapter=True)
        return p
    raise ModelLoadError(
        f"{p} is not a Hugging Face checkpoint: it has neither config.json nor adapter_config.json"
    )


def _check_json(path: Path) -> None:
    """A present config or tokenizer file that is not JSON fails here, naming the file."""
    if not path.is_file():
        return
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{path}: not a valid JSON file ({err})") from None


def adapter_base_path(adapter: Path) -> Path:
    """The local base-model folder a PEFT adapter was trained on (no hub names: no network)."""
    cfg_path = adapter / "adapter_config.json"
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"cannot read adapter config {cfg_path}: {err}") from err
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise ModelLoadError(f"{cfg_path} has no base_model_name_or_path")
    base_path = Path(base)
    if not base_path.is_absolute():
        base_path = (adapter / base_path).resolve()
    if not base_path.is_dir():
        raise ModelLoadError(
            f"adapter {adapter} was trained on base {base!r}, which is not a local folder; "
            "pass the base folder as the model path and this folder as the adapter"
        )
    return base_path


def _has_tokenizer(path: Path) -> bool:
    return any((path / f).is_file() for f in TOKENIZER_FILES)


def load_tokenizer(path: str | Path, *, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """The tokenizer of a checkpoint, with a pad token (EOS) so batching always works."""
    p = Path(path)
    if not _has_tokenizer(p):
        raise ModelLoadError(
            f"{p} has no tokenizer files (expected one of {', '.join(TOKENIZER_FILES)})"
        )
    try:
        tok = AutoTokenizer.from_pretrained(p, trust_remote_code=trust_remote_code)
    except Exception as err:  # the tokenizers library raises a bare Exception
        raise ModelLoadError(f"cannot load the tokenizer in {p}: {err}") from err
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ModelLoadError(f"tokenizer in {p} has neither a pad nor an eos token")
        tok.pad_token = tok.eos_token
    return tok


def load_model(
    path: str | Path,
    *,
    adapter: str | Path | None = None,
    dtype: str | torch.dtype = "auto",
    trust_remote_code: bool = False,
    device: str | torch.device | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a local folder, optionally with an adapter.

    `path` may itself be an adapter folder (as `scripts/finetune.py` writes for large
    LoRA runs); its base is then read from adapter_config.json. `device="auto"` spreads a
    large model over the available GPUs; None leaves it on the CPU.
    """
    p = check_model_path(path)
    torch_dtype = resolve_dtype(dtype)
    if (p / "config.json").is_file():
        base, adapter_path = p, (check_model_path(adapter) if adapter is not None else None)
    else:
        if adapter is not None:
            raise ModelLoadError(f"{p} is already an adapter folder; do not pass adapter=")
        base, adapter_path = adapter_base_path(p), p
    if adapter_path is not None and not (adapter_path / "adapter_config.json").is_file():
        raise ModelLoadError(f"adapter {adapter_path} has no adapter_config.json")

    kwargs: dict[str, Any] = {
        "dtype": torch_dtype,
        "use_safetensors": True,
        "trust_remote_code": trust_remote_code,
    }
    if device == "auto":
        kwargs["device_map"] = "auto"
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    except (OSError, ValueError, KeyError, SafetensorError) as err:
        raise ModelLoadError(f"cannot load a causal LM from {base}: {err}") from err

    tok_dir = adapter_path if adapter_path is not None and _has_tokenizer(adapter_path) else base
    tokenizer = load_tokenizer(tok_dir, trust_remote_code=trust_remote_code)

    if adapter_path is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, adapter_path, is_trainable=False)
        except (OSError, ValueError, KeyError, SafetensorError) as err:
            raise ModelLoadError(f"cannot load the adapter in {adapter_path}: {err}") from err
    if device is not None and device != "auto":
        model = model.to(device)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


def eos_ids(model: Any, tokenizer: Any, *, required: bool = True) -> list[int]:
    """All end-of-sequence ids the model's generation config or the tokenizer declare
    (sampling for PPO needs one; evaluation can run to the token limit without)."""
    ids: set[int] = set()
    for src in (getattr(model, "generation_config", None), tokenizer):
        eos = getattr(src, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif isinstance(eos, list | tuple):
            ids.update(int(e) for e in eos)
    if required and not ids:
        raise ValueError("neither the model's generation config nor the tokenizer has an EOS id")
    return sorted(ids)


FINGERPRINT_SUFFIXES = (".safetensors", ".json", ".jinja", ".model", ".txt")


def model_fingerprint(path: str | Path, *, memo: Path | None = None) -> str:
    """Content hash of a checkpoint folder (weights, config, tokenizer) for cache keys.

    Hashing 13 GB of 7B weights takes a while, so results are memoised in `memo` (a JSON
    file) keyed by each file's path, size and mtime; the tiny model is hashed directly.
    """
    p = Path(path).resolve()
    files = sorted(
        f
        for f in p.iterdir()
        if f.is_file() and f.name.endswith(FINGERPRINT_SUFFIXES) and f.name != "dareu_model.json"
    )
    if not files:
        raise ModelLoadError(f"{p} has no checkpoint files to fingerprint")
    stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    memo_key = content_hash(stats)
    table: dict[str, str] = {}
    if memo is not None and memo.is_file():
        try:
            table = json.loads(memo.read_text())
        except json.JSONDecodeError:
            table = {}
        if memo_key in table:
            return table[memo_key]
    digest = hash_files(files)
    if memo is not None:
        table[memo_key] = digest
        atomic_write_json(memo, table)
    return digest
