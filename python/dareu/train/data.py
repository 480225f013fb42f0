"""QA samples -> a DataLoader whose order depends only on (seed, epoch).

Resuming a run must replay exactly the batches the killed run would have seen, so the
shuffle is a pure function of the seed and the epoch rather than of the global RNG.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dareu.data.formatting import PromptFormat, collate_train, encode_doc, encode_qa
from dareu.data.schema import DocSample, QASample


class EncodedQA(Dataset[dict[str, list[int]]]):
    """QA pairs (answer tokens scored) and documents (every token scored), tokenised once
    up front (they are small; re-encoding per epoch is waste)."""

    def __init__(
        self,
        samples: Sequence[QASample | DocSample],
        tokenizer: Any,
        fmt: PromptFormat,
        max_length: int,
    ) -> None:
        if not samples:
            raise ValueError("no training samples")
        self.rows = [
            encode_doc(tokenizer, s.text, max_length)
            if isinstance(s, DocSample)
            else encode_qa(tokenizer, s.question, s.answer, fmt, max_length)
            for s in samples
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.rows[i]


class EpochShuffleSampler(Sampler[int]):
    """A permutation seeded by (seed, epoch); `set_epoch` is called by Accelerate's loader."""

    def __init__(self, n: int, seed: int, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


def qa_loader(
    samples: Sequence[QASample | DocSample],
    tokenizer: Any,
    fmt: PromptFormat,
    *,
    max_length: int,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
) -> DataLoader[dict[str, list[int]]]:
    """Right-padded, answer-only-labelled batches (see `dareu.data.formatting`)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ds = EncodedQA(samples, tokenizer, fmt, max_length)
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    return DataLoader(
        ds,
        batch_size=batch_size,
        sampler=EpochShuffleSampler(len(ds), seed, shuffle),
        collate_fn=partial(collate_train, pad_token_id=pad_id),
        # A private generator: creating an iterator then draws its base seed from here,
        # not from the global RNG, whose state a resumed run restores exactly.
        generator=torch.Generator().manual_seed(seed),
    )


def set_loader_epoch(loader: Any, epoch: int) -> None:
    """Point a (possibly Accelerate-prepared) loader's sampler at `epoch`."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)
