"""Rendering: numbers with units, plain-text tables, JSON and CSV documents, and the text of every
answer the command line prints (search, predict, hardware, law fits, calibrations). Numbers come
from the public API; nothing here computes a formula."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from timescale_frontier._core import Candidate, LawFit, Prediction, ResolvedBudget, ShapeFit
from timescale_frontier._data import as_data
from timescale_frontier._text import binary_bytes, count, plural, si
from timescale_frontier.frontier import SearchResult, candidate_row
from timescale_frontier.hardware import MATMUL_FACTOR_KEYS, Hardware
from timescale_frontier.hardware import origin as hardware_origin
from timescale_frontier.loss import Law, get_law

if TYPE_CHECKING:  # for the signatures only: the calibration and recipe modules import this one's callers
    from timescale_frontier.calibrate.plan import Plan
    from timescale_frontier.calibrate.records import CalibrationResult
    from timescale_frontier.recipe import RecipeComparison

# ---------------------------------------------------------------- numbers with units


def seconds(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    if x >= 3600:
        return f"{x / 3600:.3g} h"
    if x >= 1:
        return f"{x:.3g} s"
    if x >= 1e-3:
        return f"{x * 1e3:.3g} ms"
    return f"{x * 1e6:.3g} us"


def budget_text(b: ResolvedBudget) -> str:
    """``12 h`` or ``$5,000 at $3.22/chip-hour = 1553 h`` (the binding part of the budget); on
    several chips the money's hours are wall-clock hours with every chip running."""
    if b.limit == "money":
        chips = f" of wall clock on each of {b.chips} chips" if b.chips > 1 else ""
        return f"${b.usd:,.0f} at ${b.usd_per_chip_hour:g}/chip-hour = {b.hours:.4g} h{chips}"
    return f"{b.hours:g} h"


# ---------------------------------------------------------------- tables and documents


def wrap(text: str, indent: str = "", subsequent: str = "") -> str:
    """``text`` wrapped to the terminal (``COLUMNS`` or its width; 100 when not a terminal), at
    most 120 and at least 60 columns wide."""
    width = min(max(shutil.get_terminal_size((100, 24)).columns, 60), 120)
    return textwrap.fill(text, width, initial_indent=indent, subsequent_indent=subsequent, break_on_hyphens=False)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table, right-aligned cells, a rule under the header."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=False))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(out)


def to_json(obj: Any) -> str:
    return json.dumps(as_data(obj), indent=2, allow_nan=False) + "\n"


def _csv_cell(v: Any) -> Any:
    """Whole-number floats as integers (counts the core holds as floats: params, steps, tokens;
    "169294464" rather than "169294464.0"); other values as they are."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows({k: _csv_cell(v) for k, v in row.items()} for row in rows)
    return buf.getvalue()


def calibration_status(hw: Hardware) -> str:
    """How far to trust the step time on ``hw``: the calibration's cross-validated error, or why
    it is a datasheet roofline."""
    c = hw.calibration
    if hw.calibrated and "heldout_median_abs_pct_error" in c:
        return (
            f"calibrated ({c.get('model')}): cross-validated median step-time error "
            f"{c['heldout_median_abs_pct_error']:.3g}% on {c.get('n_samples')} measured steps"
        )
    if hw.calibrated:
        return f"calibrated ({c.get('model')})"
    return (
        "UNCALIBRATED: datasheet roofline, not measured on this chip (efficiencies transferred from the"
        " calibrated GPUs; see `timescale hardware show`)"
    )


# ---------------------------------------------------------------- search

HEADERS = ["d_model", "layers", "heads x dim/kv", "d_ff", "mlp", "attn", "embed", "vocab", "seq", "batch", "micro"]
HEADERS += ["recomp"]
HEADERS += ["params", "step"]
HEADERS += ["tokens", "memory", "loss"]
PARETO_ROWS = 15


def _heads(c: Candidate) -> str:
    a = c.architecture
    return f"{a.n_heads}x{a.head_dim}/{a.n_kv_heads}"


def _cells(c: Candidate, chips: int, same: Sequence[Candidate] = ()) -> list[str]:
    """A candidate's table cells; ``same``: equivalent candidates (other head splits) shown in its row."""
    a = c.architecture
    cells = [
        str(a.d_model),
        str(a.n_layers),
        ",".join(_heads(x) for x in (c, *same)),
        str(a.d_ff),
        a.mlp,
        a.attention[:5],
        "tied" if a.tied_embeddings else "untied",
        str(a.vocab_size),
        str(a.seq_len),
        str(a.batch_size),
        str(a.micro_batch or "-"),
        a.recompute,
        count(c.params),
        seconds(c.step_time_s),
        count(c.tokens),
        binary_bytes(c.memory_bytes),
        f"{c.loss:.4f}",
    ]
    return cells + ([c.step.sharding, c.step.bound] if chips > 1 else [])


def _thin(rows: list[Candidate], n: int) -> list[Candidate]:
    """At most ``n`` rows, evenly spaced, first and last kept."""
    if len(rows) <= n:
        return rows
    picks = sorted({round(i * (len(rows) - 1) / (n - 1)) for i in range(n)})
    return [rows[i] for i in picks]


def law_label(name: str, law: Law) -> str:
    """A law's name and the evidence terms it is used with, in words."""
    terms = list(law.terms)
    if not terms:
        return f"{name} (no evidence terms: the law as published)"
    words = [f"context (evaluated at {law.eval_context:,.0f} tokens)" if t == "context" else t for t in terms]
    return f"{name} + {', '.join(words)}"


def _chip_table(r: SearchResult) -> list[str]:
    cells = []
    reasons: dict[str, None] = {}
    for c in r.chip_counts:
        if c.best is None:
            cells.append([str(c.chips), "", f"{c.budget.hours:.4g} h", "-", "-", "-", "-", "-", "-", "infeasible"])
            continue
        b = c.best
        if c.tie:
            reasons[c.tie] = None
        cells.append(
            [
                str(c.chips) + (" *" if c.chips == r.chips else ""),
                "~" if c.tie else "",
                f"{c.budget.hours:.4g} h",
                f"{c.chips * c.budget.hours:.4g}",
                f"{b.architecture.d_model} x {b.architecture.n_layers}",
                f"{_heads(b)}, d_ff {b.architecture.d_ff} {b.architecture.mlp}, "
                + ("tied" if b.architecture.tied_embeddings else "untied"),
                count(b.params),
                b.step.sharding,
                count(b.tokens),
                f"{b.loss:.4f}" + (" (lowest)" if c.lowest and c.chips != r.chips else ""),
            ]
        )
    money = r.budget.limit == "money"
    lines = [
        "Chip counts searched (* = chosen: the lowest predicted loss, or among the counts tied with it the fewest"
        " chip-hours, then the shortest wall-clock)"
        + (": a money budget buys chip-hours, so more chips run for fewer wall-clock hours" if money else "")
        + ":",
        table(
            ["chips", "~", "wall-clock h", "chip-hours", "d_model x layers", "heads x dim/kv, MLP, embed", "params"]
            + ["sharding", "tokens", "loss"],
            cells,
        ),
    ]
    if reasons:
        lines.append("~ tied with the chosen count: " + "; ".join(reasons) + ".")
    return [*lines, ""]


#: What each rejection count means, where the name alone does not say.
_REJECTION_NOTES = {
    "malformed": " (axis combinations that make no model: head_dim not dividing d_model, kv_group not dividing the"
    " heads, or the micro-batch not dividing the batch)",
    "aspect_ratio": " (d_model/n_layers outside the guard)",
    "batch_cap": " (tokens per step above the critical batch)",
    "unshardable": " (no sharding of the chips divides them)",
}


def _top_table(r: SearchResult, headers: list[str]) -> list[str]:
    """The top candidates, one row per distinct model (head splits that change nothing share a
    row), marked when tied with the best within the model's own error."""
    groups = r.top_groups()
    rows, tied = [], 1
    reasons: dict[str, None] = {}
    for i, (c, *same) in enumerate(groups):
        reason = r.tie_reason(c) if i else None
        if reason is not None:
            tied += 1
            if not reason.startswith("within the step"):
                reasons[reason] = None
        rows.append([str(i + 1), "~" if reason is not None else ""] + _cells(c, r.chips, same))
    err, source = r.step_time_error
    collapsed = (
        f", {len(groups)} distinct (head splits with the same loss share a row)" if len(groups) < len(r.top) else ""
    )
    vocabs = r.space_axes.get("vocab_size", [])
    ref = r.law.reference_vocab
    per = (
        f"; losses per token of the law's {ref:,.0f}-token reference vocabulary, comparable across vocabularies"
        if ref is not None and len(vocabs) > 1
        else ""
    )
    lines = [
        f"Top {len(r.top)} by predicted loss{collapsed}" + (" (memory per chip)" if r.chips > 1 else "") + per + ":",
        table(["#", "~"] + headers, rows),
    ]
    if tied > 1:
        lines.append(
            f"~ within the model's uncertainty of #1: a step time off by {100 * err:.3g}% ({source}) moves the loss by "
            f"about {r.loss_resolution(r.best):.2g} nats/token"
            + (f"; published alternatives of the loss model reorder others ({'; '.join(reasons)})" if reasons else "")
            + (
                "; #1 and this one are not ranked by the model."
                if tied == 2
                else f"; #1 and these {tied - 1} are not ranked by the model."
            )
        )
    return lines


def search_document(r: SearchResult, out_format: str) -> str:
    """A search result (``SearchResult``) as ``table``, ``json`` or ``csv`` text."""
    if out_format == "json":
        return to_json({**r.to_dict(), "budget_text": budget_text(r.budget)})
    if out_format == "csv":
        group_of = {c.index: g for g, members in enumerate(r.top_groups(), 1) for c in members}
        rows = [
            {
                "set": "top",
                "rank": i + 1,
                "group": group_of[c.index],
                "tied_with_best": r.tied_with_best(c),
                "chips": r.chips,
                **candidate_row(c),
            }
            for i, c in enumerate(r.top)
        ]
        rows += [
            {"set": "pareto", "rank": i + 1, "group": "", "tied_with_best": "", "chips": r.chips, **candidate_row(c)}
            for i, c in enumerate(r.pareto)
        ]
        return to_csv(rows)
    hw: Hardware = r.hardware
    b: Candidate = r.best
    a = b.architecture
    headers = HEADERS + (["sharding", "bound"] if r.chips > 1 else [])
    status = calibration_status(hw)
    interval = r.loss_interval(b)
    bits = r.law.loss_terms(a, b.tokens, r.unique_tokens).bits_per_char
    n_pareto = len(r.pareto)
    listed = "all" if r.pareto_total == n_pareto else f"an evenly spread {n_pareto:,} of its {r.pareto_total:,}"
    shown = (
        f" ({PARETO_ROWS} of {r.pareto_total:,} shown; --format json or csv lists {listed})"
        if n_pareto > PARETO_ROWS
        else ""
    )
    rejected = {
        k: getattr(r.rejected, k) for k in ("malformed", "aspect_ratio", "memory", "budget", "batch_cap", "unshardable")
    }
    out = [
        f"{hw.description} ({hw.path}), budget {budget_text(r.budget)}, law {law_label(r.law_name, r.law)}"
        + (f", {r.unique_tokens:.3g} unique tokens" if r.unique_tokens else ""),
        f"step time: {hw.step_time_formula}",
        f"[{status}]",
        "",
        f"Best: d_model {a.d_model}, {plural(a.n_layers, 'layer')}, {plural(a.n_heads, 'head')} ({a.n_kv_heads} KV) "
        f"of {a.head_dim}, "
        f"d_ff {a.d_ff} {a.mlp}, {a.attention} attention, {'tied' if a.tied_embeddings else 'untied'} embeddings, "
        f"seq {a.seq_len} x batch {a.batch_size}, recompute {a.recompute}, "
        + (f"micro-batch {a.micro_batch} per chip" if a.micro_batch else "no gradient accumulation"),
        f"  {count(b.params)} params ({count(b.non_embedding_params)} non-embedding), "
        f"{seconds(b.step_time_s)}/step, {count(b.tokens)} tokens, "
        f"memory {binary_bytes(b.memory_bytes)} of {binary_bytes(hw.usable_hbm_bytes)} usable"
        + (" per chip" if r.chips > 1 else "")
        + ", "
        f"predicted loss {b.loss:.4f} nats/token"
        + (f" ({bits:.3f} bits/char)" if bits > 0 else "")
        + (
            f" (95% interval {interval[0]:.4f}-{interval[1]:.4f} over {len(r.law_bootstrap)} bootstrap refits of the law)"
            if interval
            else ""
        ),
        *(
            [f"  on {r.chips} chips, {b.step.sharding}: memory is per chip, step time includes communication"]
            if r.chips > 1
            else []
        ),
        *([f"  NOT A MEANINGFUL ANSWER: {r.outside_the_law}."] if r.outside_the_law else []),
        "",
        *(_chip_table(r) if len(r.chip_counts) > 1 else []),
        "Why:",
        *(wrap(line, "  ", "    ") for line in r.explain()),
        "",
        *_top_table(r, headers),
        "",
        f"Pareto set, loss vs parameters (nothing else is both smaller and better){shown}:",
        table(headers, [_cells(c, r.chips) for c in _thin(list(r.pareto), PARETO_ROWS)]),
        "",
        f"Evaluated {r.evaluated:,} configurations in {r.elapsed_s:.2f} s "
        f"({r.evaluated / max(r.elapsed_s, 1e-9) / 1e6:.1f} M/s); explaining the answer took {r.explain_s:.2f} s more"
        + (" (a second search, without the aspect-ratio guard)" if r.explained_by_search else "")
        + f"; {r.feasible:,} feasible. Dropped: "
        + ", ".join(f"{v:,} {k.replace('_', ' ')}{_REJECTION_NOTES.get(k, '')}" for k, v in rejected.items() if v)
        + ".",
    ]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- predict


def prediction_document(
    p: Prediction, hw: Hardware, law: str, out_format: str, ops: bool = False, law_obj: Law | None = None
) -> str:
    """One prediction as ``table`` or ``json`` text (with the MEMCPY op table when ``ops``)."""
    arch = p.architecture
    if out_format == "json":
        doc = {
            "hardware": hw.name,
            "calibrated": hw.calibrated,
            "budget_text": budget_text(p.budget),
            "law": law,
            "loss_terms_on": list((law_obj or get_law(law)).terms),
            **as_data(p),
            "loss_terms": p.loss_terms.to_dict() if p.loss_terms is not None else None,
        }
        if ops:
            doc["ops"] = as_data(arch.op_table())
        return to_json(doc)
    status = calibration_status(hw)
    law_obj = law_obj or get_law(law)
    lines = [
        repr(arch),
        f"on {hw.description} ({status}), {budget_text(p.budget)}, law {law_label(law, law_obj)}",
        f"  params                {count(p.params)} ({count(p.non_embedding_params)} non-embedding)",
        *(
            [
                f"  active params         {count(p.active_params)} ({count(p.active_non_embedding_params)} non-embedding):"
                f" {arch.top_k} of {arch.experts} routed + {arch.shared_experts} shared experts a token; the law sees these",
            ]
            if arch.experts
            else []
        ),
        f"  FLOPs per step        {si(p.flops_per_step, 'FLOP')}",
        f"  MEMCPY per step       {binary_bytes(p.memcpy_bytes_per_step)} ({p.memcpy_bytes_per_step:.4g} bytes)",
        f"  memory                {binary_bytes(p.memory_bytes)} of {binary_bytes(hw.usable_hbm_bytes)} usable"
        f" ({'fits' if p.fits_memory else 'DOES NOT FIT'})",
        f"  step time             {seconds(p.step_time_s)}",
        f"  steps in budget       {p.steps:,.0f}",
        f"  tokens                {count(p.tokens)} ({count(p.tokens_per_step)} per step)",
        *(
            [
                f"  epochs                {p.epochs:.3g} (worth {count(p.effective_tokens)} fresh tokens)",
            ]
            if p.epochs is not None
            else []
        ),
        f"  predicted loss        {'-' if p.loss is None else f'{p.loss:.4f} nats/token'}",
    ]
    t = p.loss_terms
    if t is not None:
        if t.bits_per_char > 0:
            lines[-1] += (
                f" ({t.bits_per_char:.3f} bits/char; per token of the {law_obj.reference_vocab:,.0f}-token reference)"
            )
        lines.append(
            f"    = E {t.irreducible:.4f} + parameters {t.params:.4f} + data {t.data:.4f} + shape {t.shape:.4f} + "
            f"vocabulary {t.vocab:+.4f} + context {t.context:.4f}"
        )
        if "batch" in law_obj.terms:
            lines.append(
                f"    batch               token efficiency {t.batch_efficiency:.3f} ({t.batch:.4f} of the data term): "
                f"{count(p.tokens_per_step)} tokens per step against Step Law's optimal {count(t.optimal_batch_tokens)}"
            )
        if t.repetition > 0:
            lines.append(f"    repetition          {t.repetition:.4f} (Muennighoff et al. 2023)")
        best = law_obj.best_shape(arch.d_model, arch.n_layers)
        if best is not None:
            lines.append(
                f"    shape               d_model/n_layers {arch.d_model / arch.n_layers:.3g}; the shape term's best at "
                f"this size: d_model {best[0]:.0f} x {best[1]:.1f} layers ({law_obj.shape_kind})"
            )
    if len(p.chip_counts) > 1:
        lines.append("  chip counts:")
        for c in p.chip_counts:
            mark = "*" if c.chips == p.chips else " "
            loss = "-" if c.loss is None else f"{c.loss:.4f}"
            fits = "" if c.fits_memory else "  (does not fit in memory)"
            word = "chip " if c.chips == 1 else "chips"
            lines.append(f"  {mark} {c.chips:5d} {word}  {budget_text(c.budget):>24s}  loss {loss}{fits}")
    if p.chips > 1:
        st = p.step
        chosen = st.sharding if p.fits_memory else f"no sharding fits; least memory: {st.sharding}"
        lines.insert(2, f"  chips                 {p.chips} ({chosen}); memory and MEMCPY per chip")
        lines.append("  shardings (per chip):")
        for o in p.shardings:
            if o.step is None:
                lines.append(f"    {o.sharding:16s} does not divide this configuration")
                continue
            s = o.step
            mark = "*" if p.fits_memory and o.sharding == st.sharding else " "
            lines.append(
                f"  {mark} {o.sharding:16s} step {seconds(s.step_time_s)} = max(compute "
                f"{seconds(s.compute_s)}, DP comm {seconds(s.dp_comm_s) if s.dp > 1 else '-'}) + TP comm "
                f"{seconds(s.tp_comm_s) if s.tp > 1 else '-'}; memory {binary_bytes(s.memory_bytes)}"
                f"{'' if o.fits_memory else ' (DOES NOT FIT)'}; {s.bound}-bound"
            )
    if p.loss is None and p.fits_memory:
        lines.append(f"  (one step takes {seconds(p.step_time_s)}, longer than the budget)")
    if not p.fits_memory and p.loss is not None:
        lines.append(
            "  DOES NOT FIT: the loss is what this plan would reach if it ran; to make it fit: smaller micro-batches"
            " (--micro-batch), recomputation (--recompute), or more chips (--chips)"
        )
    lines += [f"  warning: {w}" for w in p.warnings]
    if not p.in_domain:
        lines.append("  OUTSIDE THE MODEL'S DOMAIN: the predicted loss is an extrapolation (see the warnings above)")
    if ops:
        table_ops = arch.op_table()
        # The op table is the whole model's (on many chips each chip runs its shard): shares are of
        # the whole model's traffic, so they add up to 100% on any chip count.
        whole = sum(o.bytes_per_step for o in table_ops) or 1.0
        rows = [
            [
                o.phase,
                o.scope,
                o.name,
                binary_bytes(o.read_bytes),
                binary_bytes(o.write_bytes),
                binary_bytes(o.bytes_per_step),
                f"{100 * o.bytes_per_step / whole:.1f}%",
            ]
            for o in table_ops
        ]
        if p.chips > 1:
            lines += [
                "",
                f"MEMCPY operation table of the whole model ({binary_bytes(whole)} per step); on {p.chips} chips each "
                f"chip moves {binary_bytes(p.memcpy_bytes_per_step)} per step (its {p.step.sharding} shard):",
            ]
        lines += ["", table(["pass", "scope", "op", "read", "write", "per step", "share"], rows)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- hardware


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def hardware_list(hardware: Sequence[Hardware]) -> str:
    """One line per hardware file a name finds: where it comes from (the user's hardware directory
    replaces a shipped file of the same name), whether and how well it is calibrated."""
    rows = [
        [
            hw.name,
            hardware_origin(hw.path),
            calibration_brief(hw),
            si(hw.peak_bf16_flops_per_s, "FLOP/s"),
            binary_bytes(hw.hbm_bytes),
            si(hw.hbm_bytes_per_s, "B/s"),
            _short(hw.description, 20),
        ]
        for hw in hardware
    ]
    headers = ["name", "file", "calibration", "bf16 peak", "HBM", "HBM BW", "description"]
    user = [hw for hw in hardware if hardware_origin(hw.path) == "user"]
    note = (
        f"user: {user[0].path.parent} (replaces the shipped file of the same name); details: timescale hardware show NAME"
        if user
        else "details: timescale hardware show NAME"
    )
    return table(headers, rows) + "\n" + note + "\n"


def calibration_brief(hw: Hardware) -> str:
    """The word no, or the calibration's cross-validated median step-time error."""
    if not hw.calibrated:
        return "no"
    err = hw.calibration.get("heldout_median_abs_pct_error")
    brief = f"{err:.1f}%" if isinstance(err, int | float) else "yes"
    # The stack of the default calibration, and how many more the file holds (hardware show names them).
    more = f" +{len(hw.stacks) - 1}" if len(hw.stacks) > 1 else ""
    return f"{hw.stack} {brief}{more}" if hw.stack and hw.stack != "default" else f"yes {brief}{more}"


def hardware_show(hw: Hardware) -> str:
    lines = [
        f"{hw.name}: {hw.description}",
        f"file: {hw.path}",
        f"calibrated: {'yes' if hw.calibrated else 'no (datasheet roofline with assumed efficiencies)'}",
        f"step time: {hw.step_time_formula}",
        f"peak bf16: {si(hw.peak_bf16_flops_per_s, 'FLOP/s')}",
        f"HBM: {binary_bytes(hw.hbm_bytes)} ({hw.usable_hbm_fraction:g} usable), {si(hw.hbm_bytes_per_s, 'B/s')}",
    ]
    if hw.collective_bytes_per_s is not None:
        pods = (
            f", in pods of {hw.core.chips_per_pod} at that rate and {si(hw.core.inter_pod_bytes_per_s, 'B/s')}"
            " per chip between pods"
            if hw.core.chips_per_pod is not None and hw.core.inter_pod_bytes_per_s is not None
            else ""
        )
        nodes = (
            f" in nodes of {hw.core.chips_per_node}, {si(hw.core.inter_node_bytes_per_s, 'B/s')} per chip each way"
            f" between nodes{pods} (collectives across nodes run hierarchically)"
            if hw.core.inter_node_bytes_per_s is not None
            else ""
        )
        lines.append(
            f"interconnect: {hw.core.topology}, up to {hw.max_chips} chips; ring collectives at "
            f"{si(hw.collective_bytes_per_s, 'B/s')} per chip each way{nodes} (--chips)"
        )
    else:
        lines.append("interconnect: none (single chip only)")
    if hw.usd_per_chip_hour is not None:
        lines.append(f"price: ${hw.usd_per_chip_hour:g} per chip-hour ({hw.notes.get('price.date') or 'undated'})")
    else:
        lines.append("price: none listed")
    lines.append("sources:")
    lines += [f"  {k}: {v}" for k, v in hw.sources.items()]
    if hw.notes.get("interconnect.source"):
        lines.append(f"  interconnect: {hw.notes['interconnect.source']}")
    if hw.notes.get("interconnect.inter_node_source"):
        lines.append(f"  between nodes: {hw.notes['interconnect.inter_node_source']}")
    if hw.notes.get("interconnect.inter_pod_source"):
        lines.append(f"  between pods: {hw.notes['interconnect.inter_pod_source']}")
    if hw.calibrated:
        c = hw.calibration
        lines.append(f"calibration ({hw.stack}): {c.get('model')} from {c.get('source')}")
        if "heldout_median_abs_pct_error" in c:
            lines.append(
                f"  {c.get('n_samples')} measured steps, cross-validated median error {c['heldout_median_abs_pct_error']:.3g}%"
                + (f", rank correlation {c['heldout_spearman']:.3f}" if "heldout_spearman" in c else "")
                + f" ({c.get('date', 'undated')})"
            )
        if "heldout_median_abs_pct_error_moe" in c:
            lines.append(
                f"  dense rows ({c.get('n_dense')}) {c['heldout_median_abs_pct_error_dense']:.3g}%,"
                f" mixture-of-experts rows ({c.get('n_moe')}) {c['heldout_median_abs_pct_error_moe']:.3g}%"
            )
        factors = [f"{k.split('_')[0]} {c[k]:.3g}" for k in MATMUL_FACTOR_KEYS.values() if k in c]
        if factors:
            lines.append(f"  low-precision matmuls, seconds per FLOP relative to bf16: {', '.join(factors)}")
        if len(hw.stacks) > 1:
            lines.append(f"stacks: {', '.join(hw.stacks)} (--stack NAME uses one; the first is the default)")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- laws and calibrations


def law_fit_text(fit: LawFit, n_bootstrap: int) -> str:
    """The coefficients of a fitted law (``LawFit``) with their 95% bootstrap intervals."""
    law = fit.law
    kept = len(fit.bootstrap)
    iv = {i.name: i for i in fit.intervals}
    rows = [
        [k, f"{v:.4g}", f"[{iv[k].lo:.4g}, {iv[k].hi:.4g}]" if kept else "n/a"]
        for k, v in (("E", law.e), ("A", law.a), ("B", law.b), ("alpha", law.alpha), ("beta", law.beta))
    ]
    lines = [table(["coefficient", "fit", f"95% bootstrap ({kept} refits)"], rows)]
    lines.append(
        f"fitted on {fit.n_runs} runs: params {law.fit_params[0]:.3g}-{law.fit_params[1]:.3g}, "
        f"tokens {law.fit_tokens[0]:.3g}-{law.fit_tokens[1]:.3g}; Huber objective {fit.objective:.4g}"
    )
    return "\n".join(lines) + "\n"


def shape_fit_text(fit: ShapeFit, n_bootstrap: int) -> str:
    """A fitted shape term (``ShapeFit``) with its 95% bootstrap intervals and what it means."""
    c, opt, lo, hi = fit.term
    kept = n_bootstrap - fit.bootstrap_rejected
    ci, oi = fit.c_interval, fit.aspect_opt_interval
    rows = [
        ["c (nats/token per (ln aspect)^2)", f"{c:.4g}", f"[{ci[0]:.4g}, {ci[1]:.4g}]" if kept else "n/a"],
        ["aspect_opt (d_model / n_layers)", f"{opt:.4g}", f"[{oi[0]:.4g}, {oi[1]:.4g}]" if kept else "n/a"],
    ]
    lines = [
        table(["shape term", "fit", f"95% bootstrap ({kept} resamples)"], rows),
        f"fitted on {fit.n_runs} runs over aspect ratios {lo:.3g}-{hi:.3g}: the shapes measured differ by up to "
        f"{fit.effect:.4f} nats/token from the best shape; residual {fit.rms_residual:.4f} nats/token (rms); the law"
        " above is fitted net of the term (a model of the best shape); the search keeps to the shapes measured",
    ]
    return "\n".join(lines) + "\n"


def calibration_text(r: CalibrationResult) -> str:
    """A calibration's models (``CalibrationResult``): fit and held-out errors, the chosen one."""
    rows = []
    for name, rep in r.reports.items():
        v = r.validation.get(name, {})
        rows.append(
            [
                name + (" *" if name == r.chosen else ""),
                f"{rep.r2:.4f}",
                f"{rep.mean_abs_pct_error:.1f}%",
                f"{rep.max_abs_pct_error:.1f}%",
                f"{rep.heldout_mean_abs_pct_error:.1f}%",
                f"{rep.heldout_median_abs_pct_error:.1f}%",
                f"{rep.heldout_max_abs_pct_error:.1f}%",
                f"{rep.heldout_spearman:.3f}",
                f"{v['median_abs_pct_error']:.1f}%" if v else "-",
            ]
        )
    headers = ["model", "R^2", "mean err", "max err", "CV mean", "CV median", "CV max", "CV rank corr"]
    return (
        "\n".join(
            [
                table([*headers, "validation median"], rows),
                f"* chosen: {r.chosen} ({r.n_fit} fit samples, {r.n_validation} validation samples, {r.elapsed_s:.0f} s)",
                f"step time: {r.hardware.step_time_formula}",
                *(
                    [
                        f"few measurements: {r.n_fit} steps for a model of {r.n_coefficients}"
                        " coefficients; its errors above are rough (measure more: a longer --time-budget-s, or more rows)"
                    ]
                    if r.few_samples
                    else []
                ),
                *_replaced_lines(r),
            ]
        )
        + "\n"
    )


def plan_document(p: Plan, hw: Hardware, out_format: str) -> str:
    """A calibration plan (``calibrate.plan.Plan``) as a table or JSON."""

    def row(x: Any) -> dict[str, Any]:
        return {
            **x.arch.to_dict(),
            "split": x.split,
            "predicted_step_s": x.predicted_step_s,
            "predicted_compile_s": x.predicted_compile_s,
            "predicted_cost_s": x.cost_s,
        }

    if out_format == "json":
        return to_json(
            {
                "hardware": hw.name,
                "backend": p.backend,
                "time_budget_s": p.time_budget_s,
                "step_range_s": list(p.step_range_s),
                "microbench_s": p.microbench_s,
                "total_s": p.total_s,
                "items": [row(x) for x in p.items],
                "dropped": [row(x) for x in p.dropped],
            }
        )
    cells = [
        [
            str(i + 1),
            x.split,
            f"{x.arch.d_model} x {x.arch.n_layers}",
            f"{x.arch.seq_len} x {x.arch.batch_size}",
            x.arch.mlp,
            x.arch.attention,
            seconds(x.predicted_step_s),
            f"{x.predicted_compile_s:.0f} s",
            f"{x.cost_s:.1f} s",
        ]
        for i, x in enumerate(p.items)
    ]
    lines = [
        f"Calibration plan for {hw.name} on {p.backend}: {len(p.items)} configurations in a budget of "
        f"{p.time_budget_s:g} s (predicted {p.total_s:.0f} s: microbenchmarks {p.microbench_s:.0f} s, then each"
        " configuration's compile and timing)",
        f"Architectures chosen with predicted steps of {seconds(p.step_range_s[0])} to {seconds(p.step_range_s[1])}"
        " (by the file's current model) that fit the chip's memory",
        table(["#", "split", "d_model x layers", "seq x batch", "mlp", "attention", "step", "compile", "cost"], cells),
        "Compile times are the backend's assumption until the run measures its own"
        + (
            f" ({p.items[0].concurrency} programs compile at once, so each costs its share)"
            if p.items and p.items[0].concurrency > 1
            else ""
        )
        + "; a configuration runs only when its compile and timing fit the time left.",
    ]
    if p.dropped:
        lines.append(f"{len(p.dropped)} more designed configurations do not fit the budget (a longer --time-budget-s).")
    return "\n".join(lines) + "\n"


def _replaced_lines(r: CalibrationResult) -> list[str]:
    """Where a calibration went and what it replaced, with both models' errors on the same steps."""
    lines = []
    rep = r.replaced
    if rep is not None:
        old = rep.old_heldout_median_abs_pct_error
        was = (
            f"a calibration ({rep.old_model}, cross-validated median error {old:.1f}%)"
            if old is not None
            else f"an uncalibrated {rep.old_model} (datasheet)"
            if not rep.old_calibrated
            else f"a calibration ({rep.old_model})"
        )
        verdict = " (worse: --force)" if rep.worse else ""
        how = "replaced" if rep.path == r.hardware.path else f"supersedes {rep.path}:"
        lines.append(
            f"{how} {was}, now {rep.new_heldout_median_abs_pct_error:.1f}%{verdict}; on these {rep.n} steps the old "
            f"model errs {rep.old_on_new_steps_median_abs_pct_error:.1f}% (median)"
        )
    where = hardware_origin(r.hardware.path)
    note = f" (your hardware directory: --hardware {r.hardware.name} uses it from now on)" if where == "user" else ""
    lines.append(f"wrote {r.hardware.path}{note}")
    return lines


def _score(x: float, fmt: str, unit: str = "") -> str:
    """A score as the table shows it: ``-`` when undefined (the times do not vary), three significant
    digits when beyond what the fixed format reads at a glance (R^2 = -2.7e+300, not 300 digits)."""
    if not math.isfinite(x):
        return "-"
    return f"{x:{fmt}}{unit}" if abs(x) < 1e4 else f"{x:.3g}{unit}"


def validation_text(hw: Hardware, n: int, split: str, res: dict[str, dict[str, float]], unpriced: int = 0) -> str:
    """Every step-time model scored on measured steps (and how many rows the model cannot price)."""
    rows = [
        [
            k,
            _score(v["r2"], ".4f"),
            _score(v["mean_abs_pct_error"], ".1f", "%"),
            _score(v["median_abs_pct_error"], ".1f", "%"),
            _score(v["max_abs_pct_error"], ".1f", "%"),
            _score(v["spearman"], ".3f"),
        ]
        for k, v in res.items()
    ]
    stack = f" (calibration: {hw.stack})" if hw.stack else ""
    skipped = f"{unpriced} more the model cannot price (--format json lists each with the reason)\n" if unpriced else ""
    return (
        f"{n} measured steps ({split}) on {hw.name}{stack}\n"
        + skipped
        + table(["model", "R^2", "mean err", "median err", "max err", "rank corr"], rows)
        + "\n"
    )


# ---------------------------------------------------------------- recipe


def recipe_document(c: RecipeComparison, hw: Hardware, out_format: str) -> str:
    """The recipe beside the tool's pick (``recipe.RecipeComparison``) as a table or JSON."""
    if out_format == "json":
        return to_json(c.to_dict())
    r, p, t = c.recipe, c.recipe_prediction, c.tool
    a, b = r.architecture, t.best
    rule = c.rule
    ratio = rule["tokens_per_param"]
    chips = f" x {plural(t.chips, 'chip')}" if t.chips > 1 else ""
    loss = "no step fits the budget" if p.loss is None else f"loss {p.loss:.4f}"
    plan = (
        f"{a.d_model} x {plural(a.n_layers, 'layer')}, {plural(a.n_heads, 'head')} of {a.head_dim}, d_ff {a.d_ff} {a.mlp}, "
        f"seq {a.seq_len} x batch {a.batch_size}"
        + (f", micro-batch {a.micro_batch}" if a.micro_batch else "")
        + (f", recompute {a.recompute}" if a.recompute != "none" else "")
    )
    lines = [
        f"{hw.description}, budget {budget_text(t.budget)}{chips if t.budget.limit != 'money' else ''}, law "
        f"{law_label(t.law_name, t.law)}",
        f"[{calibration_status(hw)}]",
        "",
        "The usual recipe (Chinchilla-FLOPs):",
        wrap(
            f"{t.hours:.4g} h x {si(hw.peak_bf16_flops_per_s, 'FLOP/s')}{chips} x "
            + (
                f"{rule['utilization']:.3g} utilisation (the hardware file's prediction for this model)"
                if rule.get("utilization_source") == "calibrated"
                else f"{rule['utilization']:g} utilisation"
                + (
                    f" (assumed; the hardware file predicts {rule['predicted_utilization']:.3g} for this model:"
                    " --utilization calibrated uses it)"
                    if rule.get("predicted_utilization") is not None
                    else ""
                )
            )
            + " = "
            f"{r.flops:.3g} FLOPs; "
            + (f"{ratio:g} tokens per parameter" if isinstance(ratio, int | float) else "the law's own optimum")
            + f": N = {r.params:.3g} parameters, D = {r.tokens:.3g} tokens; shape d_model/n_layers "
            f"{rule['aspect_ratio']:g}, head_dim {rule['head_dim']}, MLP {rule['ffn_mult']:g}x {rule['mlp']}: {plan} "
            f"({count(p.params)} params).",
            "  ",
            "  ",
        ),
        wrap(
            f"Under the time budget (this file's step time): {seconds(p.step_time_s)}/step, {count(p.tokens)} tokens "
            f"({p.tokens / p.params:.1f} per parameter, not the {r.tokens / r.params:.0f} the recipe planned), "
            f"memory {binary_bytes(p.memory_bytes)} of {binary_bytes(hw.usable_hbm_bytes)} usable"
            + ("" if p.fits_memory else " (DOES NOT FIT)")
            + f", {loss}.",
            "  ",
            "  ",
        ),
        "",
        f"The tool's pick (search over {c.rule.get('tool_space', 'the default space')}):",
        wrap(
            f"{b.architecture.d_model} x {plural(b.architecture.n_layers, 'layer')}, "
            f"{plural(b.architecture.n_heads, 'head')} of "
            f"{b.architecture.head_dim}, d_ff {b.architecture.d_ff} {b.architecture.mlp}, seq {b.architecture.seq_len} "
            f"x batch {b.architecture.batch_size} ({count(b.params)} params): {seconds(b.step_time_s)}/step, "
            f"{count(b.tokens)} tokens, loss {b.loss:.4f}.",
            "  ",
            "  ",
        ),
        "",
    ]
    if math.isinf(c.gap):
        lines.append("The recipe's model cannot train one step in this budget.")
    else:
        verdict = {
            "tool": "the tool's pick is predicted better, beyond the model's uncertainty (the step time's error, and "
            "every published alternative of the loss model ranks them the same way)",
            "recipe": "the recipe is predicted better, beyond the model's uncertainty",
            "tie": f"the model cannot rank them: {c.tie_reason}",
        }[c.verdict]
        lines.append(
            wrap(
                f"Predicted gap: recipe {p.loss:.4f} - tool {b.loss:.4f} = {c.gap:+.4f} nats/token; the step-time error "
                f"({100 * t.step_time_error[0]:.3g}%) moves these losses by about {c.resolution:.2g}: {verdict}."
            )
        )
    return "\n".join(lines) + "\n"
