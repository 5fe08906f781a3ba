"""Speed and memory benchmarks, bntt-jax beside a PyTorch reference (not part of the tests)."""
