"""Test configuration: run on the CPU, float32 by default (tests that need float64 opt in)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
