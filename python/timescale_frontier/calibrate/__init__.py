"""Calibration of the step-time model: live on the default JAX device (``run``, ``bench``,
``model``: the optional extra ``[calibrate]``), and from saved measurements without JAX
(``records``, ``fit``, ``hwfile``).

``model``: one training step (forward, backward, AdamW) of exactly the transformer the Rust core
counts. ``bench``: matmul, bandwidth and training-step microbenchmarks, streamed to JSONL.
``fit``: least-squares step-time models (the core's calibrated models) with cross-validation.
``records``: measurements in and out, refits and validation. ``hwfile``: writes the
``[calibration]`` section into a hardware file atomically. ``collectives``, ``train``: the
sharding check and the real-training experiment (JAX).
"""
