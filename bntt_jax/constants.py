"""The library's named choices and the papers' default constants, importable without JAX.

Nothing here imports JAX (nor do :mod:`bntt_jax.norms`' names, which hold the
normalisation choices), so command lines and configs can validate a value (and fail with a
clear message) before JAX starts. The modules that use these names re-export them.
"""

from __future__ import annotations

#: Network architectures: the BNTT papers' VGG9 and VGG11, an MLP for small inputs, and a
#: network of your own described by a layer plan (``NetworkConfig.plan``).
ARCHS = ("vgg9", "vgg11", "mlp", "custom")
#: Input encoders: signed Poisson rate coding (BNTT App. B), direct input, one value per step,
#: and pre-binned event frames (one frame per step, BNTT Appendix C's DVS input).
ENCODERS = ("poisson", "direct", "sequential", "frames")
#: LIF resets: subtract the threshold (the BNTT papers'), or reset to 0 (NIR's neurons).
RESETS = ("soft", "hard")
#: Optimisers: SGD with momentum (the BNTT papers) and Adam.
OPTIMIZERS = ("sgd", "adam")
#: Learning-rate schedules: ÷10 at 50/70/90 % of the epochs (BNTT Sec. 4.1), or constant.
LR_SCHEDULES = ("step", "constant")

#: ε of the authors' ``BatchNorm2d(eps=1e-4)``.
EPS = 1e-4
#: Running-average momentum in PyTorch's convention (new = (1−m)·old + m·batch).
MOMENTUM = 0.1
#: Damping factor α of the surrogate gradient (Eq. 8): the value the BNTT papers use.
SURROGATE_ALPHA = 0.3
