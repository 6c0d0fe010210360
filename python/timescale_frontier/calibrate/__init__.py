"""Calibration on a real accelerator with JAX (optional extra ``[calibrate]``).

``model``: one training step (forward, backward, AdamW) of exactly the transformer the Rust core
counts. ``bench``: matmul, bandwidth and training-step microbenchmarks, streamed to JSONL.
``fit``: least-squares step-time models (MEMCPY, FLOPs, combined) with cross-validation.
``hwfile``: writes the ``[calibration]`` section into a hardware file atomically.
"""
