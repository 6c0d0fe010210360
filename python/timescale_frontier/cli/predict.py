"""``timescale predict``: every metric of one architecture."""

from __future__ import annotations

import click

from timescale_frontier import render
from timescale_frontier.architecture import Architecture
from timescale_frontier.cli._common import (
    INT64,
    budget_of,
    budget_options,
    echo,
    handle_errors,
    law_options,
    parse_chips,
    parse_layout,
    stack_option,
)
from timescale_frontier.hardware import Hardware
from timescale_frontier.loss import get_law
from timescale_frontier.prediction import predict


@click.command(name="predict")
@click.option("--d-model", type=INT64, required=True)
@click.option("--n-layers", type=INT64, required=True)
@click.option("--n-heads", type=INT64, required=True)
@click.option("--n-kv-heads", type=INT64, default=None, help="Default: n_heads.")
@click.option("--head-dim", type=INT64, default=None, help="Default: d_model / n_heads.")
@click.option(
    "--d-ff", type=INT64, default=None, help="Default: 4 d_model (gelu), 8/3 d_model to a multiple of 256 (swiglu)."
)
@click.option("--mlp", default=None, help="gelu (default) or swiglu.")
@click.option("--attention", default=None, help="flash (default) or materialized.")
@click.option("--tied/--untied", default=None, help="Tie the output projection to the embedding (default: untied).")
@click.option("--seq-len", type=INT64, default=None, help="Tokens per sequence (default 2048).")
@click.option("--batch-size", type=INT64, default=None, help="Sequences per step (default 32).")
@click.option("--vocab-size", type=INT64, default=None, help="Default 32000.")
@click.option(
    "--recompute", default=None, help="Activation recomputation: none (default), full or selective (attention core)."
)
@click.option(
    "--micro-batch",
    type=INT64,
    default=None,
    help="Sequences per micro-step on each chip (gradient accumulation; default: the whole per-chip batch).",
)
@click.option(
    "--experts",
    type=INT64,
    default=None,
    help="Routed experts per MoE layer (default 0: a dense MLP; d_ff is then one expert's width).",
)
@click.option("--top-k", type=INT64, default=None, help="Routed experts per token (a mixture of experts needs it).")
@click.option("--shared-experts", type=INT64, default=None, help="Experts every token goes to besides (default 0).")
@click.option("--hardware", "-H", required=True)
@budget_options
@click.option("--unique-tokens", type=float, default=None, help="Unique training tokens available.")
@law_options
@click.option(
    "--tokens",
    type=float,
    default=None,
    help="Train for this many tokens instead of a budget: the loss and the wall-clock time they take (every term"
    " of the loss; with --format json, each term).",
)
@click.option(
    "--chips", default="1", show_default=True, metavar="N|N,M,..|auto", help="Chips (the fastest sharding that fits)."
)
@click.option(
    "--layout",
    default=None,
    metavar="KEY=VALUE,..",
    help="Train with exactly this layout on its chips: dp, tp, pp, vp (virtual stages), cp, ep, zero (0-3),"
    " sp (true/false), matmul (bf16, fp8, int8, fp4); e.g. tp=8,pp=4,vp=5,dp=8,zero=1,sp=true,matmul=fp8.",
)
@stack_option
@click.option("--ops", is_flag=True, help="Also list the MEMCPY operation table.")
@click.option("--format", "out_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--debug", is_flag=True)
@handle_errors
def predict_cmd(
    d_model: int,
    n_layers: int,
    n_heads: int,
    n_kv_heads: int | None,
    head_dim: int | None,
    d_ff: int | None,
    mlp: str | None,
    attention: str | None,
    tied: bool | None,
    seq_len: int | None,
    batch_size: int | None,
    vocab_size: int | None,
    recompute: str | None,
    micro_batch: int | None,
    experts: int | None,
    top_k: int | None,
    shared_experts: int | None,
    hardware: str,
    hours: float | None,
    budget_usd: float | None,
    usd_per_chip_hour: float | None,
    unique_tokens: float | None,
    law: str,
    loss_terms: str | None,
    eval_context: float | None,
    tokens: float | None,
    chips: str,
    layout: str | None,
    stack: str | None,
    ops: bool,
    out_format: str,
    debug: bool,
) -> None:
    """Every metric of one architecture on one or more chips for a budget."""
    arch = Architecture(
        d_model,
        n_layers,
        n_heads,
        n_kv_heads=n_kv_heads,
        head_dim=head_dim,
        d_ff=d_ff,
        mlp=mlp,
        attention=attention,
        tied_embeddings=tied,
        seq_len=seq_len,
        batch_size=batch_size,
        vocab_size=vocab_size,
        recompute=recompute,
        micro_batch=micro_batch,
        experts=experts,
        top_k=top_k,
        shared_experts=shared_experts,
    )
    hw = Hardware.load(hardware, stack=stack)
    p = predict(
        arch,
        hw,
        None if tokens is not None else budget_of(hours, budget_usd, usd_per_chip_hour),
        law=law,
        loss_terms=loss_terms,
        eval_context=eval_context,
        unique_tokens=unique_tokens,
        chips=parse_chips(chips),
        tokens=tokens,
        layout=parse_layout(layout),
    )
    law_obj = get_law(law, loss_terms=loss_terms, eval_context=eval_context)
    echo(render.prediction_document(p, hw, law, out_format, ops, law_obj=law_obj), nl=False)
