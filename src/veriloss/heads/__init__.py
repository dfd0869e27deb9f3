"""Prototype heads (docs/losses.md): ``create(name, embedding_dim, num_classes, **params)``, ``available()``.

Every head class is exported under its name. The capabilities a training loop reads (instead of types):
``has_margin``/``ramp_margin`` (margin warm-up), ``can_reinitialize``/``reinitialize_prototypes`` (A3M-I),
``sparse_gradients`` (streaming heads: lazy-sgd), ``sharded`` (with :func:`sharded_parameters`,
:func:`full_state_dicts`, :func:`local_state_dicts` for DDP and checkpoints). :func:`unchecked` turns the input
checks that read tensor values off for a loop whose inputs are known good.
"""

from .._checks import unchecked
from .alpha import (
    A3MHead,
    A3MIHead,
    AlphaHead,
    QMarginHead,
    full_state_dicts,
    local_state_dicts,
    normalized_class_means,
    qmargin_kappa,
    shard_range,
    sharded_parameter_names,
    sharded_parameters,
)
from .angular import (
    ArcFace,
    CombinedMargin,
    CosFace,
    CosineMarginHead,
    ElasticArcFace,
    ElasticCosFace,
    LSoftmax,
    SphereFace,
)
from .base import Head, cosine
from .classic import CoCo, L2Softmax, NormFace, Softmax
from .harmonic import Harmonic
from .registry import OPTIONS, aliases, available, create, describe, register
from .sface import SFace

__all__ = [
    "OPTIONS",
    "A3MHead",
    "A3MIHead",
    "AlphaHead",
    "ArcFace",
    "CoCo",
    "CombinedMargin",
    "CosFace",
    "CosineMarginHead",
    "ElasticArcFace",
    "ElasticCosFace",
    "Harmonic",
    "Head",
    "L2Softmax",
    "LSoftmax",
    "NormFace",
    "QMarginHead",
    "SFace",
    "Softmax",
    "SphereFace",
    "aliases",
    "available",
    "cosine",
    "create",
    "describe",
    "full_state_dicts",
    "local_state_dicts",
    "normalized_class_means",
    "qmargin_kappa",
    "register",
    "shard_range",
    "sharded_parameter_names",
    "sharded_parameters",
    "unchecked",
]
