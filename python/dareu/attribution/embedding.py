"""A sentence-embedding DA: a local encoder (frozen) plus a linear head over owners.

For users who have a sentence encoder (BERT, E5, MiniLM, ...) on disk: mean-pooled
embeddings of the response prefix, a linear softmax head trained on owner labels (answers
and their k-slice prefixes), and a temperature fitted on held-out paraphrases. A
bidirectional encoder sees the whole input, so each prefix is encoded on its own (no
one-pass trick); distinct prefixes are batched and encoded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from dareu.attribution.alignment import fast_offsets
from dareu.attribution.base import AttributionError, Attributor, Units
from dareu.attribution.calibration import expected_calibration_error, fit_temperature
from dareu.attribution.classifier import ATTRIBUTION_JSON, read_meta, softmax
from dareu.cache import (
    atomic_dir,
    atomic_write_json,
    content_hash,
    hash_files,
    is_complete,
    output_root,
)
from dareu.data.schema import Benchmark
from dareu.reward import K_SLICES

HEAD_FILE = "head.safetensors"
RECIPE_VERSION = 1


def load_encoder(
    path: str | Path, *, device: str | torch.device | None = None
) -> tuple[nn.Module, Any]:
    """A local HF encoder (safetensors only, no remote code) and its fast tokenizer."""
    from transformers import AutoModel

    from dareu.models.loading import check_model_path, load_tokenizer

    p = check_model_path(Path(path).expanduser())
    try:
        model = AutoModel.from_pretrained(p, use_safetensors=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as err:
        raise AttributionError(f"cannot load an encoder from {p}: {err}") from err
    tokenizer = load_tokenizer(p)
    if not getattr(tokenizer, "is_fast", False):
        raise AttributionError(f"the tokenizer in {p} is not a fast tokenizer (needed for offsets)")
    if device is not None:
        model = model.to(device)
    return model.eval(), tokenizer


class Encoder:
    """Mean-pooled embeddings of token-id sequences, wrapped in the encoder's special tokens."""

    def __init__(self, model: nn.Module, tokenizer: Any, *, batch_size: int = 64) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        first = (
            tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        )
        last = (
            tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        )
        self.first = [first] if first is not None else []
        self.last = [last] if last is not None else []
        limit = getattr(model.config, "max_position_embeddings", 512) or 512
        self.max_length = int(limit)

    @torch.no_grad()
    def embed(self, rows: Sequence[Sequence[int]], progress: bool = False) -> np.ndarray:
        keep = self.max_length - len(self.first) - len(self.last)
        inputs = [self.first + list(r)[:keep] + self.last for r in rows]
        hidden = getattr(self.model.config, "hidden_size", None)
        out = np.zeros((len(rows), hidden or 0), dtype=np.float32)
        if any(len(x) == 0 for x in inputs):
            raise AttributionError(
                "cannot embed an empty prefix with an encoder that has no CLS/BOS"
            )
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        pad = self.tokenizer.pad_token_id or 0
        device = next(self.model.parameters()).device
        chunks = range(0, len(order), self.batch_size)
        for s in tqdm(chunks, desc="embed", disable=not progress, leave=False):
            idx = order[s : s + self.batch_size]
            T = max(len(inputs[i]) for i in idx)
            ids = torch.full((len(idx), T), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), T), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, : len(inputs[i])] = torch.tensor(inputs[i])
                mask[r, : len(inputs[i])] = 1
            h = self.model(
                input_ids=ids.to(device), attention_mask=mask.to(device)
            ).last_hidden_state
            m = mask.to(device).unsqueeze(-1).to(h.dtype)
            pooled = ((h * m).sum(1) / m.sum(1)).float().cpu().numpy()
            if out.shape[1] == 0:
                out = np.zeros((len(rows), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled
        return out


class EmbeddingAttributor(Attributor):
    """softmax((W e(prefix) + b) / T)[owner] with e = mean-pooled encoder states."""

    kind = "embedding"

    def __init__(
        self,
        encoder: Encoder,
        head: nn.Linear,
        owners: Sequence[str],
        *,
        temperature: float = 1.0,
        policy_tokenizer: Any | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(owners, policy_tokenizer)
        if head.out_features != len(self.owners):
            raise AttributionError(
                f"embedding head has {head.out_features} outputs but {len(self.owners)} owners"
            )
        self.encoder, self.head, self.temperature = encoder, head.eval(), float(temperature)
        self.meta = dict(meta or {})

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str | torch.device | None = None,
        policy_tokenizer: Any | None = None,
        batch_size: int = 64,
    ) -> EmbeddingAttributor:
        p = Path(path).expanduser()
        meta = read_meta(p)
        if meta.get("kind") != "embedding":
            raise AttributionError(f"{p / ATTRIBUTION_JSON} is not an embedding attributor")
        if not (p / HEAD_FILE).is_file():
            raise AttributionError(f"{p} has no {HEAD_FILE}")
        model, tok = load_encoder(meta["encoder"], device=device)
        state = load_file(str(p / HEAD_FILE))
        head = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
        head.load_state_dict(state)
        return cls(
            Encoder(model, tok, batch_size=batch_size),
            head.to(device or "cpu"),
            meta["owners"],
            temperature=float(meta.get("temperature", 1.0)),
            policy_tokenizer=policy_tokenizer,
            meta=meta,
        )

    def to(self, device: str | torch.device) -> EmbeddingAttributor:
        self.encoder.model.to(device)
        self.head.to(device)
        return self

    def units(self, texts: Sequence[str]) -> list[Units]:
        ids, offs = fast_offsets(self.encoder.tokenizer, texts)
        return [Units(t, o, i) for t, o, i in zip(texts, offs, ids, strict=True)]

    @torch.no_grad()
    def logits(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        e = torch.from_numpy(self.encoder.embed(rows))
        w = self.head.weight
        return self.head(e.to(w.device, w.dtype)).float().cpu().numpy()

    def score_units(
        self, units: list[Units], owner_idx: np.ndarray, counts: np.ndarray
    ) -> np.ndarray:
        keys = sorted({(i, int(c)) for i in range(len(units)) for c in counts[i] if c >= 0})
        pos = {k: j for j, k in enumerate(keys)}
        lg = self.logits([(units[i].ids or [])[:c] for i, c in keys]) if keys else np.zeros((0, 1))
        p = softmax(lg / self.temperature) if len(keys) else lg
        scores = np.zeros(counts.shape, dtype=np.float64)
        for i in range(len(units)):
            for j, c in enumerate(counts[i]):
                if c >= 0:
                    scores[i, j] = p[pos[(i, int(c))], owner_idx[i]]
        return scores

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "owners": len(self.owners), "encoder": self.meta.get("encoder")}


def _fit_head(
    x: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = 1e-3, seed: int = 0
) -> nn.Linear:
    """Multinomial logistic regression (full-batch L-BFGS) on standardised features,
    folded back into one Linear layer so scoring needs no extra state."""
    torch.manual_seed(seed)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    X = torch.from_numpy((x - mu) / sd).float()
    Y = torch.from_numpy(y).long()
    head = nn.Linear(X.shape[1], n_classes)
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(head(X), Y) + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    folded = nn.Linear(X.shape[1], n_classes)
    with torch.no_grad():
        w = head.weight / torch.from_numpy(sd).float()
        folded.weight.copy_(w)
        folded.bias.copy_(head.bias - w @ torch.from_numpy(mu).float())
    return folded


def train_embedding_attributor(
    benchmark: Benchmark,
    encoder_path: Path,
    out_dir: Path,
    *,
    k: int = K_SLICES,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit the head on answers and their slice-end prefixes; temperature on paraphrases."""
    from dareu.attribution.training import attribution_data, slice_ends

    data = attribution_data(benchmark, seed=seed)
    model, tok = load_encoder(encoder_path)
    enc = Encoder(model, tok)

    def featurize(rows: Sequence[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ids, _ = fast_offsets(tok, [t for t, _ in rows])
        seqs, labels, full = [], [], []
        for r, (_, y) in zip(ids, rows, strict=True):
            ends = slice_ends(len(r), k) or [0]
            seqs += [r[:e] for e in ends]
            labels += [y] * len(ends)
            full += [j == len(ends) - 1 for j in range(len(ends))]
        return enc.embed(seqs, progress), np.array(labels, dtype=np.int64), np.array(full)

    xtr, ytr, _ = featurize(data.train)
    head = _fit_head(xtr, ytr, len(data.owners), seed=seed)
    attr = EmbeddingAttributor(enc, head, data.owners)

    def logits_of(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return head(torch.from_numpy(x)).numpy()

    xc, yc, _ = featurize(data.calib)
    T = fit_temperature(logits_of(xc), yc)
    xt, yt, ft = featurize(data.test)
    lt = logits_of(xt)
    metrics = {
        "temperature": T,
        "train_accuracy": float((logits_of(xtr).argmax(1) == ytr).mean()),
        "test_accuracy": float((lt[ft].argmax(1) == yt[ft]).mean()),
        "test_prefix_accuracy": float((lt.argmax(1) == yt).mean()),
        "test_ece_raw": expected_calibration_error(softmax(lt[ft]), yt[ft]),
        "test_ece_calibrated": expected_calibration_error(softmax(lt[ft] / T), yt[ft]),
    }
    out_dir = Path(out_dir)
    save_file(
        {k_: v.detach().contiguous() for k_, v in head.state_dict().items()},
        str(out_dir / HEAD_FILE),
    )
    atomic_write_json(
        out_dir / ATTRIBUTION_JSON,
        {
            "kind": "embedding",
            "owners": attr.owners,
            "temperature": T,
            "encoder": str(Path(encoder_path).resolve()),
            "pooling": "mean",
            "k_slices": k,
            "recipe_version": RECIPE_VERSION,
            "metrics": metrics,
        },
    )
    return metrics


def ensure_embedding_attributor(
    benchmark: Benchmark,
    encoder_path: str | Path,
    *,
    k: int = K_SLICES,
    seed: int = 0,
    root: Path | None = None,
) -> Path:
    """Cached head for (benchmark texts, encoder weights); trains it on first use."""
    from dareu.attribution.training import attribution_data
    from dareu.models.loading import check_model_path

    enc = check_model_path(Path(encoder_path).expanduser())
    data = attribution_data(benchmark, seed=seed)
    files = sorted(enc.glob("*.safetensors")) + sorted(enc.glob("tokenizer*.json"))
    key = content_hash(
        data.owners,
        data.train,
        data.calib,
        data.test,
        k,
        seed,
        hash_files(files),
        str(enc),
        RECIPE_VERSION,
    )
    target = (root or output_root()) / "attributors" / f"embedding-{key}"
    if not is_complete(target):
        with atomic_dir(target) as tmp:
            train_embedding_attributor(benchmark, enc, tmp, k=k, seed=seed)
    return target
