"""edm_sampler: EDM-family diffusion samplers for MindSpore, configurable from sgm/mindone-style YAML."""

from .checks import ConfigError
from .config import load_config, load_sampler
from .denoisers import BoundDenoiser, Denoiser, DiscreteDenoiser, MindoneEngineDenoiser, append_dims, as_denoiser
from .discretization import (
    Discretization,
    EDMDiscretization,
    Img2ImgDiscretizationWrapper,
    LegacyDDPMDiscretization,
    Txt2NoisyDiscretizationWrapper,
)
from .guiders import (
    Guider,
    IdentityGuider,
    LinearPredictionGuider,
    NoDynamicThresholding,
    SpatiotemporalPredictionGuider,
    TrapezoidPredictionGuider,
    TrianglePredictionGuider,
    VanillaCFG,
)
from .noise import NoiseSource, randn
from .registry import instantiate_from_config, known_targets, register, resolve
from .run import ModelOutputError, SamplingRun
from .samplers import (
    AncestralSampler,
    BaseDiffusionSampler,
    DPM2AncestralSampler,
    DPM2Sampler,
    DPMPP2MSampler,
    DPMPP2MSDESampler,
    DPMPP2SAncestralSampler,
    DPMPP3MSDESampler,
    DPMPPSDESampler,
    EDMSampler,
    EulerAncestralSampler,
    EulerEDMSampler,
    HeunEDMSampler,
    LCMSampler,
    LinearMultistepSampler,
    SingleStepDiffusionSampler,
)
from .scalings import EDMScaling, EpsScaling, VScaling, VScalingWithEDMcNoise
from .schedules import (
    AlignYourStepsDiscretization,
    DiffusersDDPMDiscretization,
    ExponentialDiscretization,
    ListDiscretization,
    PolyExponentialDiscretization,
    VPDiscretization,
)

__version__ = "0.1.0"

__all__ = [
    "AlignYourStepsDiscretization",
    "AncestralSampler",
    "BaseDiffusionSampler",
    "BoundDenoiser",
    "ConfigError",
    "Denoiser",
    "DiscreteDenoiser",
    "DPM2AncestralSampler",
    "DPM2Sampler",
    "DPMPP2MSDESampler",
    "DPMPP2MSampler",
    "DPMPP3MSDESampler",
    "DPMPPSDESampler",
    "DPMPP2SAncestralSampler",
    "DiffusersDDPMDiscretization",
    "Discretization",
    "EDMDiscretization",
    "EDMSampler",
    "EDMScaling",
    "EpsScaling",
    "EulerAncestralSampler",
    "ExponentialDiscretization",
    "EulerEDMSampler",
    "Guider",
    "HeunEDMSampler",
    "LCMSampler",
    "IdentityGuider",
    "Img2ImgDiscretizationWrapper",
    "LegacyDDPMDiscretization",
    "LinearMultistepSampler",
    "LinearPredictionGuider",
    "ListDiscretization",
    "MindoneEngineDenoiser",
    "ModelOutputError",
    "NoDynamicThresholding",
    "NoiseSource",
    "PolyExponentialDiscretization",
    "SamplingRun",
    "SingleStepDiffusionSampler",
    "SpatiotemporalPredictionGuider",
    "TrapezoidPredictionGuider",
    "TrianglePredictionGuider",
    "Txt2NoisyDiscretizationWrapper",
    "VScaling",
    "VPDiscretization",
    "VScalingWithEDMcNoise",
    "VanillaCFG",
    "append_dims",
    "as_denoiser",
    "instantiate_from_config",
    "known_targets",
    "load_config",
    "load_sampler",
    "randn",
    "register",
    "resolve",
    "__version__",
]
