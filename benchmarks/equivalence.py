"""Show that the torch reference and bntt-jax compute the same logits.

    python -m benchmarks.equivalence
    python -m benchmarks.equivalence --peers   # and the VGG9 of SpikingJelly and snnTorch

For each architecture: the same parameters (converted from one ``NetworkParams``) and the same
input spikes, in training mode (batch statistics) and in evaluation (running statistics, set
from one training pass with momentum 1 so that every layer fires). Prints the largest logit
difference and whether every prediction agrees; exits non-zero on a mismatch.

The comparison runs in float64 on both sides. In float32 the two libraries' convolutions
round differently (different summation orders), and the threshold ``u > θ`` turns ~1e-7
differences into occasional spike flips that then propagate; float64 removes that noise, so
what is compared is the network's semantics.

With ``--peers`` the VGG9 built in SpikingJelly and in snnTorch (:mod:`benchmarks.peers`) gets
the same parameters and spikes: SpikingJelly's must give our logits (its LIF node with a
decayed soft reset is Eq. 4's neuron); snnTorch's differ, by its reset that is not decayed,
and the difference is printed.
"""

from __future__ import annotations

import sys

import jax
import numpy as np
import torch

import bntt_jax as bj
from benchmarks.torch_ref import TorchBNTT

CASES = [
    bj.NetworkConfig(arch="vgg9", num_steps=5, img_size=32, momentum=1.0),
    bj.NetworkConfig(arch="vgg11", num_steps=4, img_size=32, momentum=1.0),
    bj.NetworkConfig(arch="mlp", num_steps=50, in_features=1, hidden=(256, 256), momentum=1.0),
]


def compare(
    cfg: bj.NetworkConfig, train: bool, batch: int = 8, peer: str | None = None
) -> tuple[float, bool, float]:
    """(max relative logit difference, identical predictions, mean |logit|) between bntt-jax
    and the torch reference, or the ``peer`` library's network."""
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        net = bj.init(jax.random.key(0), cfg)
        if cfg.arch == "mlp":
            spikes = np.asarray(bj.sequential_encode(rng.random((batch, cfg.num_steps))))
            torch_spikes = torch.from_numpy(spikes.copy())
        else:
            x = rng.normal(0, 1, (batch,) + cfg.input_shape)
            spikes = np.asarray(bj.poisson_encode(jax.random.key(2), x, cfg.num_steps))
            torch_spikes = torch.from_numpy(np.ascontiguousarray(spikes.transpose(0, 1, 4, 2, 3)))
        if not train:  # running statistics := this batch's (momentum 1), so layers fire
            net = net.replace(batch_stats=bj.simulate(net, spikes, train=True).batch_stats)
        ours = np.asarray(bj.simulate(net, spikes, cfg.num_steps, train=train).logits)
    if peer is None:
        model = TorchBNTT(net, dtype=torch.float64).train(train)
    else:
        from benchmarks.peers import build  # the peer libraries: optional

        model = build(peer, net).to(torch.float64).train(train)
    with torch.no_grad():
        theirs = model(None, spikes=torch_spikes).numpy()
    scale = float(np.abs(theirs).max())
    diff = float(np.abs(ours - theirs).max() / (scale + 1e-30))
    return diff, bool((ours.argmax(-1) == theirs.argmax(-1)).all()), float(np.abs(theirs).mean())


def main(argv: list[str] | None = None) -> int:
    peers = "--peers" in (sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(2)
    ok = True
    if peers:
        for peer, same_neuron in (("spikingjelly", True), ("snntorch", False)):
            for train in (False, True):
                diff, same, size = compare(CASES[0], train, peer=peer)
                good = (diff < 1e-9 and same) if same_neuron else True
                ok &= good and size > 0
                print(
                    f"{peer:12s} vgg9 {'train' if train else 'eval '}: mean |logit| {size:.3f}, "
                    f"max relative difference {diff:.1e}, predictions "
                    f"{'identical' if same else 'differ'}  "
                    + (
                        "ok"
                        if good and same_neuron
                        else "MISMATCH"
                        if not good
                        else "(a reset that is not decayed: a different neuron)"
                    )
                )
    for cfg in CASES:
        for train in (False, True):
            diff, same, size = compare(cfg, train)
            good = diff < 1e-9 and same and size > 0
            ok &= good
            print(
                f"{cfg.arch:6s} T={cfg.num_steps:<3d} {'train' if train else 'eval '}: "
                f"mean |logit| {size:.3f}, max relative difference {diff:.1e}, predictions "
                f"{'identical' if same else 'DIFFER'}  {'ok' if good else 'MISMATCH'}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
