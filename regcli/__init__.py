"""regcli: intensity-based 2-D image registration.

Data flow of :func:`register`::

    fixed, moving images ──> Gaussian pyramid (pyramid.py)
      └─ per level, coarse to fine:
           params ─> transform matrix M (transforms.py) ─> warp moving by M (resample.py)
           ─> cost and d cost / d pixel (metrics.py) ─> chain rule with dM/dp ─> gradient
           ─> optimiser step (optimizers.py) ─> new params, cost history
    ─> RegistrationResult: matrix (fixed -> moving), params, cost_history, warped image

Public names are loaded on first use so that ``import regcli`` (and ``regcli --help``) stays
fast: nothing here imports scipy.optimize or matplotlib.
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
    "write_image": "io",
    "check_image": "io",
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
    "RegistrationResult": "registration",
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
    return sorted(set(globals()) | set(__all__))
