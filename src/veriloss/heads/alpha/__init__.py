"""The α-divergence heads (docs/losses.md) over one exact solver (:mod:`veriloss.functional.alpha_solver`).

- :mod:`.heads`: alpha, qmargin, a3m, a3m-i (the dense path, and the layout options that pick the others);
- :mod:`.streaming`: W read in chunks (``chunk_size``); :mod:`.sharded`: W split over processes (``sharded``);
- shared parts: :mod:`.logits` (the parameter object of the kernels), :mod:`.stream` (the chunked pass),
  :mod:`.collectives` and :mod:`.shards` (who owns which classes; DDP and checkpoint helpers).

Design notes: docs/alpha-heads.md.
"""

from .heads import A3MHead, A3MIHead, AlphaHead, QMarginHead, normalized_class_means, qmargin_kappa
from .logits import AlphaLogits
from .sharded import sharded_alpha_loss
from .shards import (
    Shard,
    full_state_dicts,
    local_state_dicts,
    shard_range,
    sharded_parameter_names,
    sharded_parameters,
)
from .streaming import streaming_alpha_loss

__all__ = [
    "A3MHead",
    "A3MIHead",
    "AlphaHead",
    "AlphaLogits",
    "QMarginHead",
    "Shard",
    "full_state_dicts",
    "local_state_dicts",
    "normalized_class_means",
    "qmargin_kappa",
    "shard_range",
    "sharded_alpha_loss",
    "sharded_parameter_names",
    "sharded_parameters",
    "streaming_alpha_loss",
]
