"""conv3x3 (forward and its custom backward) against the library convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bntt_jax.cpu.convolution import conv3x3, conv3x3_im2col, conv3x3_reference


@pytest.mark.parametrize("shape", [(3, 8, 8, 5), (4, 2, 2, 6), (2, 1, 1, 3), (2, 4, 4, 2)])
def test_values_and_gradients_match_the_library_convolution(shape):
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=shape))
        kernel = jnp.asarray(rng.normal(size=(3, 3, shape[-1], 7)))
        g = jnp.asarray(rng.normal(size=shape[:3] + (7,)))
        for fn in (conv3x3, conv3x3_im2col):
            np.testing.assert_allclose(
                fn(x, kernel), conv3x3_reference(x, kernel), rtol=1e-12, atol=1e-12
            )

        def loss(fn):
            return lambda x, k: jnp.sum(g * fn(x, k))

        ours = jax.grad(loss(conv3x3), argnums=(0, 1))(x, kernel)
        ref = jax.grad(loss(conv3x3_reference), argnums=(0, 1))(x, kernel)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_float32_and_jit():
    x = jnp.ones((2, 4, 4, 3), jnp.float32)
    kernel = jnp.ones((3, 3, 3, 2), jnp.float32)
    out = jax.jit(conv3x3)(x, kernel)
    assert out.dtype == jnp.float32 and out.shape == (2, 4, 4, 2)
    assert float(out[0, 1, 1, 0]) == 27.0 and float(out[0, 0, 0, 0]) == 12.0  # interior, corner
