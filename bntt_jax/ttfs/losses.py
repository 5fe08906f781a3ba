"""The training terms of the TTFS paper (Park & Yoon): temporal-kernel regularisation (TR,
Sec. 4), temporal-kernel-aware batch normalisation (TB, Sec. 5, Eq. 7–8 and 14–16) and the
total loss (Eq. 9).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax


def kernel_regularization(
    taus: Sequence[jax.Array],
    t_ds: Sequence[jax.Array],
    tau0: float | Sequence[float],
    t_d0: float | Sequence[float],
) -> jax.Array:
    """REG_TR = Σ_l (τ^l − τ^l_0)² + Σ_l (t_d^l − t_d,0^l)² (Sec. 4): the kernel parameters are
    held near their initial values. ``tau0``/``t_d0``: one value for all layers or one each."""
    n = len(taus)
    tau0 = [tau0] * n if isinstance(tau0, int | float) else list(tau0)
    t_d0 = [t_d0] * n if isinstance(t_d0, int | float) else list(t_d0)
    if len(t_ds) != n or len(tau0) != n or len(t_d0) != n:
        raise ValueError(
            f"kernel_regularization(): {n} τ's but {len(t_ds)} t_d's, {len(tau0)} τ_0's and "
            f"{len(t_d0)} t_d,0's; give one per layer (or one initial value for all)."
        )
    reg = jnp.zeros(())
    for tau, t_d, a, b in zip(taus, t_ds, tau0, t_d0, strict=True):
        reg = reg + jnp.sum((tau - a) ** 2) + jnp.sum((t_d - b) ** 2)
    return reg


def tb_probability(gamma: jax.Array, beta: jax.Array, z_min: jax.Array) -> jax.Array:
    """P_TB(γ, β) of Eq. 14 (= Eq. 8), elementwise over BN channels:

    ``½(⅓γ² + γ + 1)β³ − ½ẑ_mβ² − ½(ẑ_m²γ + 2)β − (⅙ẑ_m²γ² − 1)ẑ_m``,

    the integral from β to ẑ_m of the second-order Taylor approximation (Eq. 7) of the
    normalised pre-activation's density: the probability mass of the pruning region, which
    TB maximises. Its gradients are Eq. 16 (γ) and Eq. 15 with the factor β² its first term
    lacks as printed: ``3/2(⅓γ² + γ + 1)β² − ẑ_mβ − ½(γẑ_m² + 2)``.
    """
    z = z_min
    return (
        0.5 * (gamma**2 / 3.0 + gamma + 1.0) * beta**3
        - 0.5 * z * beta**2
        - 0.5 * (z**2 * gamma + 2.0) * beta
        - (z**2 * gamma**2 / 6.0 - 1.0) * z
    )


def tb_penalty(
    gammas: Sequence[jax.Array], betas: Sequence[jax.Array], z_mins: Sequence[jax.Array]
) -> jax.Array:
    """P_TB summed over layers and channels (Sec. 5), each layer with the ẑ_m of its own
    kernel. ẑ_m enters as a constant: TB updates only γ and β (Sec. 5: "We updated the
    parameters γ and β with the gradients of proposed P_TB")."""
    total = jnp.zeros(())
    for gamma, beta, z_min in zip(gammas, betas, z_mins, strict=True):
        total = total + jnp.sum(tb_probability(gamma, beta, jax.lax.stop_gradient(z_min)))
    return total


def total_loss(
    logits: jax.Array,
    labels: jax.Array,
    reg_tr: jax.Array,
    p_tb: jax.Array,
    lambda_tr: float,
    lambda_tb: float,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Eq. 9: ``L = L_CE + λ_TR·REG_TR − λ_TB·P_TB``; returns ``(L, its terms)``."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    loss = ce + lambda_tr * reg_tr - lambda_tb * p_tb
    return loss, {"loss_ce": ce, "reg_tr": reg_tr, "p_tb": p_tb}
