"""Owner-aware data: TOFU, the synthetic owners benchmark, user JSONL, prompt formatting.

Every sample carries its owner, and every source resolves a forget request into the same
`Benchmark`, so the later stages have a single code path.
"""

from dareu.data.errors import DataError
from dareu.data.loader import load_benchmark
from dareu.data.schema import Benchmark, DocSample, QASample
from dareu.data.synthetic import generate_synthetic, synthetic_dir
from dareu.data.user import load_user_data

__all__ = [
    "Benchmark",
    "DataError",
    "DocSample",
    "QASample",
    "generate_synthetic",
    "load_benchmark",
    "load_user_data",
    "synthetic_dir",
]
