"""regcli: intensity-based 2-D image registration.

Data flow of :func:`register` (module names in brackets)::

    fixed, moving images ─> checked, scaled to [0, 1] (_validate) ─> Gaussian pyramids (pyramid)
      ─> global start: a search over rotations, scales and shifts (initialize, search)
      └─ per level, coarse to fine (registration: the driver):
           params ─> matrix M (transforms) ─> warp moving by M (resample, objective)
           ─> cost and d cost / d pixel (metrics, costs) ─> chain rule with dM/dp ─> gradient
           ─> optimiser step (optimizers) ─> new params, cost history
    ─> RegistrationResult (result): matrix (fixed -> moving), params, cost history, warped

Public names are loaded on first use so that ``import regcli`` (and ``regcli --help``) stays
fast: nothing here imports numpy, scipy.optimize or matplotlib.  ``__init__.pyi`` lists the
same names for type checkers.
"""

from __future__ import annotations

import importlib

#: The package version (the one place it is written; pyproject.toml reads it from here).
__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "RegcliError": "errors",
    "InputError": "errors",
    "RegistrationError": "errors",
    "read_image": "io",
    "read_channels": "io",
    "write_image": "io",
    "ImageMeta": "images",
    "check_image": "_validate",
    "joint_histogram": "histogram",
    "entropy": "histogram",
    "METRICS": "metrics",
    "Metric": "metrics",
    "ssd": "metrics",
    "correlation": "metrics",
    "mutual_information": "metrics",
    "normalized_mutual_information": "metrics",
    "gradient_similarity": "metrics",
    "pluim": "metrics",
    "TRANSFORMS": "transforms",
    "Transform": "transforms",
    "make_transform": "transforms",
    "translation_matrix": "transforms",
    "rotation_matrix": "transforms",
    "compose": "transforms",
    "mean_displacement": "transforms",
    "warp": "resample",
    "translate": "resample",
    "rotate": "resample",
    "gaussian_pyramid": "pyramid",
    "OPTIMIZERS": "optimizers",
    "register": "registration",
    "RegistrationResult": "result",
    "register_many": "many",
    "PairResult": "many",
    "register_stack": "stack",
    "iter_register_stack": "stack",
    "StackResult": "stack",
    "warp_frames": "stack",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'regcli' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"regcli.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*__all__, "__version__"})
