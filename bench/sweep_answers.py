"""The answers of the default law over every shipped hardware file, 1 and 8 chips, 0.1 to 1000
hours, with the plain law's answer beside each and every axis edge the answer sits on (what binds
it: `SearchResult.edges`). One JSON object per line on stdout; the README's table ("Is the answer
still wider than convention?") and issue 21's closing note come from it.

    python bench/sweep_answers.py > sweep.jsonl            # every file (about 20 minutes on 2 cores)
    python bench/sweep_answers.py h100_sxm,tpu_v4          # some
"""

import json
import sys
import time

from timescale_frontier import search
from timescale_frontier.hardware import load_available

HOURS = [0.1, 1, 12, 100, 1000]


def main() -> None:
    names = sys.argv[1].split(",") if len(sys.argv) > 1 else sorted(h.name for h in load_available()[0])
    for hw in names:
        for chips in (1, 8):
            for h in HOURS:
                t0 = time.time()
                try:
                    r = search(hw, h, top_k=1, chips=chips)
                except Exception as e:  # noqa: BLE001 - e.g. no network for 8 chips: recorded, not fatal
                    print(json.dumps({"hw": hw, "chips": chips, "hours": h, "error": str(e)[:160]}), flush=True)
                    continue
                a = r.best.architecture
                try:
                    pa = search(hw, h, top_k=1, chips=chips, loss_terms="none").best.architecture
                    plain = [pa.d_model, pa.n_layers, pa.seq_len, pa.batch_size]
                except Exception:  # noqa: BLE001 - the plain law may find nothing feasible
                    plain = None
                print(
                    json.dumps(
                        {
                            "hw": hw, "chips": chips, "hours": h, "d": a.d_model, "l": a.n_layers,
                            "aspect": round(a.d_model / a.n_layers, 1), "seq": a.seq_len, "batch": a.batch_size,
                            "micro_batch": a.micro_batch, "tied": a.tied_embeddings, "params": r.best.params,
                            "tokens": r.best.tokens, "loss": round(r.best.loss, 4),
                            "edges": [(e.axis, e.side, e.bind) for e in r.edges()], "plain": plain,
                            "seconds": round(time.time() - t0, 2),
                        }
                    ),
                    flush=True,
                )  # fmt: skip


if __name__ == "__main__":
    main()
