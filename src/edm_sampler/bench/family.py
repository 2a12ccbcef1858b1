"""The sampler family of the real-net section: each edm_sampler sampler next to its k-diffusion twin.

Every case runs on the real-net problem (TinyConvNet, ``VanillaCFG(3.0)``, the same steps and the EDM/Karras schedule
0.002..80, rho 7) in three edm_sampler ways (``graph_loop=True``, step by step in PyNative, step by step in graph
mode) and as k-diffusion's ``sample_<name>`` on the PyTorch twin. Options are each sampler's defaults, except the
churn samplers (Euler, Heun, DPM-2), which get ``s_churn=10`` like the section's Euler rows.

Noise, per call (N steps):

* churn samplers: edm_sampler draws a NumPy Gaussian on every churned step (all N at s_churn=10); k-diffusion calls
  ``torch.randn_like`` on every step, churned or not;
* ancestral samplers and LCM: both draw one Gaussian per step that adds noise (N - 1: none on the step to 0),
  edm_sampler with NumPy, k-diffusion with ``torch.randn_like`` (``default_noise_sampler``);
* SDE samplers: both use a Brownian tree in sigma built per call, edm_sampler its NumPy
  :class:`~edm_sampler.brownian.BrownianNoise`, k-diffusion ``BrownianTreeNoiseSampler`` (torchsde ``BrownianTree``,
  seeded from torch's global RNG); one increment per step that adds noise, two for ``dpmpp_sde``;
* ``dpmpp_2m``, ``lms``: none.

With ``graph_loop=True`` edm_sampler makes all its draws on the host before the loop and copies them to the device as
one ``(N, *x.shape)`` array; step by step, each draw is wrapped as a Tensor when its step runs.

k-diffusion 0.1.1.post1 has no ``sample_lcm``; where the installed ``sampling.py`` lacks it, the baseline is
:func:`~edm_sampler.bench.torch_baselines.sample_lcm`, ComfyUI's ``sample_lcm`` for an EPS (VE) model, reproduced.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field

import edm_sampler as E

from .options import FAMILY
from .torch_baselines import TorchBaselines, sample_lcm

S_CHURN = 10.0

CHURN = "churn"
ANCESTRAL = "ancestral"
BROWNIAN = "brownian"
NONE = "none"

NOISE = {
    CHURN: ("NumPy Gaussian per churned step", "torch.randn_like every step"),
    ANCESTRAL: ("NumPy Gaussian per noised step", "torch.randn_like per noised step"),
    BROWNIAN: ("NumPy Brownian tree, per call", "torchsde BrownianTree, per call"),
    NONE: ("none", "none"),
}


@dataclass(frozen=True)
class Case:
    """One sampler of the family and its k-diffusion twin."""

    name: str  # k-diffusion's name: sample_<name>
    sampler: type
    noise: str  # CHURN, ANCESTRAL, BROWNIAN or NONE
    two_evals: bool = False  # two model evaluations per step (one on the last): NFE = 2N - 1
    options: dict = field(default_factory=dict)  # both sides' own options (same names in both libraries)
    draws_per_step: int = 1  # noise draws per noised step

    def nfe(self, steps: int) -> int:
        return 2 * steps - 1 if self.two_evals else steps

    def draws(self, steps: int) -> tuple[int, int]:
        """Noise draws per call: (edm_sampler, k-diffusion); k-diffusion's churn samplers draw on every step."""
        if self.noise == NONE:
            return 0, 0
        if self.noise == CHURN:
            return steps, steps  # s_churn=10 churns every step of the schedule
        noised = (steps - 1) * self.draws_per_step  # no noise on the step to sigma = 0
        return noised, noised

    def make(self, guider, graph_loop: bool):
        return self.sampler(**self.options, guider_config=guider, graph_loop=graph_loop)


CASES = {
    c.name: c
    for c in (
        Case("euler", E.EulerEDMSampler, CHURN, options={"s_churn": S_CHURN}),
        Case("heun", E.HeunEDMSampler, CHURN, two_evals=True, options={"s_churn": S_CHURN}),
        Case("euler_ancestral", E.EulerAncestralSampler, ANCESTRAL),
        Case("dpmpp_2s_ancestral", E.DPMPP2SAncestralSampler, ANCESTRAL, two_evals=True),
        Case("dpmpp_2m", E.DPMPP2MSampler, NONE),
        Case("lms", E.LinearMultistepSampler, NONE),
        Case("lcm", E.LCMSampler, ANCESTRAL),
        Case("dpm_2", E.DPM2Sampler, CHURN, two_evals=True, options={"s_churn": S_CHURN}),
        Case("dpm_2_ancestral", E.DPM2AncestralSampler, ANCESTRAL, two_evals=True),
        Case("dpmpp_sde", E.DPMPPSDESampler, BROWNIAN, two_evals=True, draws_per_step=2),
        Case("dpmpp_2m_sde", E.DPMPP2MSDESampler, BROWNIAN),
        Case("dpmpp_3m_sde", E.DPMPP3MSDESampler, BROWNIAN),
    )
}
assert tuple(CASES) == FAMILY, "bench.options.FAMILY lists the cases, in order"


def kdiffusion_sampler(tb: TorchBaselines, name: str):
    """``(function, source)``: k-diffusion's ``sample_<name>``, or the bench's reproduction where it has none."""
    fn = getattr(tb.sampling, f"sample_{name}", None)
    if fn is not None:
        return fn, f"k_diffusion.sampling.sample_{name}"
    if name == "lcm":
        return functools.partial(sample_lcm, tb), "ComfyUI's sample_lcm, reproduced (not in this k-diffusion)"
    raise AttributeError(f"k-diffusion's sampling.py has no sample_{name}")


def takes_noise_sampler(fn) -> bool:
    try:
        return "noise_sampler" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True  # the bench's own reproductions take one
