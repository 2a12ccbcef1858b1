"""Reading a scheduler config's fields: each one either honoured, accepted because it cannot change the numbers, or
refused with an error that names it.

diffusers itself ignores a field its class does not take (a converted SDXL config carries DDIM's ``clip_sample`` into
``EulerDiscreteScheduler``), so such fields are accepted here too, and logged. A field the class does take is either
honoured (read through :meth:`Fields.take` by the translation) or, when it holds a value other than diffusers'
default, refused: nothing that would change diffusers' numbers is dropped silently. A field no diffusers scheduler
knows is refused as a likely typo.
"""

from __future__ import annotations

import logging
from typing import Any

from ..checks import ConfigError

logger = logging.getLogger(__name__)

# Bookkeeping fields of every diffusers config: they never change the numbers.
METADATA = ("_class_name", "_diffusers_version", "_use_default_values", "_name_or_path")

# Fields of diffusers' schedulers (0.42), so a field of another class is told apart from a typo.
KNOWN_FIELDS = frozenset(
    """num_train_timesteps beta_start beta_end beta_schedule trained_betas clip_sample set_alpha_to_one steps_offset
    prediction_type thresholding dynamic_thresholding_ratio clip_sample_range sample_max_value timestep_spacing
    rescale_betas_zero_snr variance_type skip_prk_steps interpolation_type use_karras_sigmas use_exponential_sigmas
    use_beta_sigmas sigma_min sigma_max timestep_type final_sigmas_type solver_order algorithm_type solver_type
    lower_order_final euler_at_final use_lu_lambdas use_flow_sigmas flow_shift lambda_min_clipped
    use_dynamic_shifting time_shift_type predict_x0 disable_corrector solver_p shift_terminal original_inference_steps
    timestep_scaling sigma_data sigma_schedule rho shift base_shift max_shift base_image_seq_len max_image_seq_len
    invert_sigmas stochastic_sampling predictor_order corrector_order tau_func noise_sampler_seed
    snr_shift_scale""".split()
)


class Fields:
    """One scheduler config's fields for one class: ``take(name)`` reads a field (the config's value or diffusers'
    default) and marks it honoured; :meth:`finish` then refuses what was set but not honoured."""

    def __init__(self, class_name: str, config: dict, defaults: dict, origin: str):
        self.class_name = class_name
        self.config = config
        self.defaults = defaults
        self.origin = origin
        self.taken: set[str] = set()

    def take(self, name: str) -> Any:
        if name not in self.defaults:
            raise KeyError(f"{self.class_name} has no field {name!r}")  # a bug in a translation, not in the config
        self.taken.add(name)
        return self.config.get(name, self.defaults[name])

    def choice(self, name: str, allowed: tuple) -> Any:
        """:meth:`take` a field that must be one of ``allowed`` (the values this library implements)."""
        value = self.take(name)
        if value not in allowed:
            self.refuse(name, f"supported values: {', '.join(map(repr, allowed))}")
        return value

    def flag(self, name: str) -> bool:
        value = self.take(name)
        if not isinstance(value, bool):
            self.refuse(name, "it must be true or false")
        return value

    def only_default(self, name: str, why: str) -> None:
        """Accept ``name`` only at diffusers' default value (``why`` says what the other values would need)."""
        self.taken.add(name)
        if name in self.config and self.config[name] != self.defaults[name]:
            self.refuse(name, why)

    def refuse(self, name: str, detail: str) -> None:
        value = self.config.get(name, self.defaults.get(name))
        raise ConfigError(f"{self.origin}: {self.class_name} field {name}={value!r} is not supported; {detail}")

    def finish(self) -> None:
        for name, value in self.config.items():
            if name in METADATA or name in self.taken:
                continue
            if name in self.defaults:
                if value != self.defaults[name]:
                    self.refuse(
                        name, f"edm_sampler reads these {self.class_name} fields: {', '.join(sorted(self.taken))}"
                    )
            elif name in KNOWN_FIELDS:
                logger.info(
                    "%s: %s does not take %s=%r; ignored, as diffusers ignores it",
                    self.origin,
                    self.class_name,
                    name,
                    value,
                )
            else:
                raise ConfigError(
                    f"{self.origin}: unknown field {name!r} for {self.class_name} (not a field of any diffusers "
                    f"scheduler; a typo?). {self.class_name} fields: {', '.join(sorted(self.defaults))}"
                )
