"""Type stubs of the Rust extension module (bindings in rust/py/src). Checked against the built
module by tests/test_typing.py (mypy.stubtest)."""

from collections.abc import Callable
from typing import Any, final

import numpy as np
import numpy.typing as npt

__version__: str
__all__ = [
    "Architecture",
    "CoreHardware",
    "Law",
    "SearchSpace",
    "predict",
    "evaluate",
    "budget_s_from_usd",
    "collective_bytes_per_s",
    "fit_law",
    "search",
    "TimescaleError",
    "InvalidInputError",
    "EmptySpaceError",
    "SpaceTooLargeError",
    "InfeasibleError",
    "__version__",
]

class TimescaleError(Exception): ...
class InvalidInputError(TimescaleError): ...
class EmptySpaceError(InvalidInputError): ...
class SpaceTooLargeError(InvalidInputError): ...
class InfeasibleError(TimescaleError): ...

@final
class Architecture:
    def __new__(
        cls,
        d_model: int,
        n_layers: int,
        n_heads: int,
        *,
        n_kv_heads: int | None = None,
        head_dim: int | None = None,
        d_ff: int | None = None,
        mlp: str = "gelu",
        attention: str = "flash",
        tied_embeddings: bool = False,
        seq_len: int = 2048,
        batch_size: int = 32,
        vocab_size: int = 32000,
        param_bytes: float = 4.0,
        activation_bytes: float = 2.0,
        optimizer_bytes: float = 4.0,
    ) -> Architecture: ...
    @property
    def d_model(self) -> int: ...
    @property
    def n_layers(self) -> int: ...
    @property
    def n_heads(self) -> int: ...
    @property
    def n_kv_heads(self) -> int: ...
    @property
    def head_dim(self) -> int: ...
    @property
    def d_ff(self) -> int: ...
    @property
    def mlp(self) -> str: ...
    @property
    def attention(self) -> str: ...
    @property
    def tied_embeddings(self) -> bool: ...
    @property
    def seq_len(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def param_bytes(self) -> float: ...
    @property
    def activation_bytes(self) -> float: ...
    @property
    def optimizer_bytes(self) -> float: ...
    def to_dict(self) -> dict[str, Any]: ...
    def op_table(self) -> list[dict[str, Any]]: ...
    def flops_per_step(self) -> float: ...
    def memcpy_bytes_per_step(self) -> float: ...
    def memcpy_fixed_bytes_per_step(self) -> float: ...
    def attention_score_bytes_per_step(self) -> float: ...
    def hardware_flops_per_step(self) -> float: ...
    def kernels_per_step(self) -> float: ...
    def per_op_roofline_s(self, flops_per_s: float, bytes_per_s: float) -> float: ...

@final
class CoreHardware:
    def __new__(
        cls,
        hbm_bytes: float,
        usable_hbm_fraction: float,
        model: str,
        *,
        s_per_memcpy_byte: float = 0.0,
        s_per_flop: float = 0.0,
        overhead_s: float = 0.0,
        flops_per_s: float = 0.0,
        memcpy_bytes_per_s: float = 0.0,
        s_per_kernel: float = 0.0,
        s_per_fixed_byte: float = 0.0,
        s_per_token_byte: float = 0.0,
        s_per_score_byte: float = 0.0,
    ) -> CoreHardware: ...
    @property
    def hbm_bytes(self) -> float: ...
    @property
    def usable_hbm_bytes(self) -> float: ...
    def step_time_s(self, flops: float, memcpy_bytes: float) -> float: ...
    def step_time_for(self, arch: Architecture) -> float: ...
    def step_time_parts(self, arch: Architecture) -> tuple[float, float, float]: ...

@final
class Law:
    def __new__(
        cls,
        e: float,
        a: float,
        b: float,
        alpha: float,
        beta: float,
        params: str = "total",
        fit_params: tuple[float, float] | None = None,
        fit_tokens: tuple[float, float] | None = None,
    ) -> Law: ...
    @staticmethod
    def builtin(name: str) -> Law: ...
    @staticmethod
    def builtin_names() -> list[str]: ...
    @property
    def e(self) -> float: ...
    @property
    def a(self) -> float: ...
    @property
    def b(self) -> float: ...
    @property
    def alpha(self) -> float: ...
    @property
    def beta(self) -> float: ...
    @property
    def params(self) -> str: ...
    @property
    def fit_params(self) -> tuple[float, float]: ...
    @property
    def fit_tokens(self) -> tuple[float, float]: ...
    def loss(self, n_params: float, tokens: float) -> float: ...

@final
class SearchSpace:
    def __new__(
        cls,
        *,
        d_model: list[int] | None = None,
        n_layers: list[int] | None = None,
        head_dim: list[int] | None = None,
        kv_group: list[int] | None = None,
        mlp: list[str] | None = None,
        ffn_mult: list[float] | None = None,
        attention: list[str] | None = None,
        tied_embeddings: list[bool] | None = None,
        vocab_size: list[int] | None = None,
        seq_len: list[int] | None = None,
        batch_size: list[int] | None = None,
        param_bytes: float = 4.0,
        activation_bytes: float = 2.0,
        optimizer_bytes: float = 4.0,
    ) -> SearchSpace: ...
    @property
    def size(self) -> int: ...
    def axes(self) -> dict[str, list[Any]]: ...
    def config_at(self, index: int) -> Architecture | None: ...

def predict(
    arch: Architecture,
    hardware: CoreHardware,
    budget_s: float,
    law: Law,
    unique_tokens: float | None = None,
    chips: int = 1,
    collective_bytes_per_s: float | None = None,
) -> dict[str, Any]: ...
def budget_s_from_usd(usd: float, usd_per_chip_hour: float, chips: float) -> float: ...
def collective_bytes_per_s(
    link_bytes_per_s: float, links_per_chip: float, figure_counts_both_directions: bool
) -> float: ...
def fit_law(
    params: npt.NDArray[np.float64],
    tokens: npt.NDArray[np.float64],
    loss: npt.NDArray[np.float64],
    n_bootstrap: int = 200,
    seed: int = 0,
) -> dict[str, Any]: ...
def evaluate(
    d_model: npt.NDArray[np.int64],
    n_layers: npt.NDArray[np.int64],
    n_heads: npt.NDArray[np.int64],
    n_kv_heads: npt.NDArray[np.int64],
    head_dim: npt.NDArray[np.int64],
    d_ff: npt.NDArray[np.int64],
    mlp: npt.NDArray[np.int64],
    attention: npt.NDArray[np.int64],
    tied_embeddings: npt.NDArray[np.int64],
    seq_len: npt.NDArray[np.int64],
    batch_size: npt.NDArray[np.int64],
    vocab_size: npt.NDArray[np.int64],
    param_bytes: float,
    activation_bytes: float,
    optimizer_bytes: float,
    hardware: CoreHardware,
    budget_s: float,
    law: Law,
    unique_tokens: float | None = None,
) -> dict[str, npt.NDArray[Any]]: ...
def search(
    space: SearchSpace,
    hardware: CoreHardware,
    budget_s: float,
    law: Law,
    *,
    top_k: int = 10,
    aspect_ratio_min: float = 20.0,
    aspect_ratio_max: float = 200.0,
    max_tokens_per_step: float | None = None,
    unique_tokens: float | None = None,
    chips: int = 1,
    collective_bytes_per_s: float | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> dict[str, Any]: ...
