"""Data-parallel training over ``mindspore.communication`` ranks (msrun / mpirun launchers)."""
from __future__ import annotations

import logging
from typing import Callable

__all__ = ["init"]

log = logging.getLogger(__name__)


def init(is_distributed: bool) -> tuple[int, int, Callable | None]:
    """Initialise communication when asked; returns (rank, world size, grad-reducer factory).

    Gradients are averaged over ranks (``gradients_mean=True``); the factory builds a
    ``nn.DistributedGradReducer`` for the optimizer's parameters. Single process: (0, 1, None).
    """
    if not is_distributed:
        return 0, 1, None
    import mindspore
    from mindspore import nn
    from mindspore.communication import get_group_size, get_rank, init as comm_init

    comm_init()
    rank, world = get_rank(), get_group_size()
    mindspore.set_auto_parallel_context(parallel_mode=mindspore.ParallelMode.DATA_PARALLEL,
                                        gradients_mean=True, device_num=world)
    log.info("data parallel: rank %d of %d", rank, world)
    return rank, world, lambda params: nn.DistributedGradReducer(params, mean=True, degree=world)
