"""Training on more than one process: the process group, data-parallel wrapping and sharding.

:mod:`~fluxtrain.distributed.init` sets the process group up under ``torchrun`` (restarts
included) and tears it down; :mod:`~fluxtrain.distributed.process_group` answers rank queries
and runs the collectives; :mod:`~fluxtrain.distributed.data_parallel` shards the data and
wraps the model in DDP (:mod:`~fluxtrain.distributed.allreduce`: its exact all-reduce);
:mod:`~fluxtrain.distributed.parallelism` recognizes models that are already parallel (FSDP2,
tensor parallel) and pauses gradient sync. Without a process group every function here is a
no-op for one process.

Examples:
    >>> from fluxtrain import distributed
    >>> distributed.world_size()
    1
"""

from .data_parallel import DataParallel as DataParallel
from .data_parallel import set_epoch as set_epoch
from .data_parallel import shard as shard
from .data_parallel import unwrap as unwrap
from .data_parallel import wrap_model as wrap_model
from .init import destroy_distributed as destroy_distributed
from .init import init_distributed as init_distributed
from .parallelism import fsdp_modules as fsdp_modules
from .parallelism import is_parallel as is_parallel
from .parallelism import no_gradient_sync as no_gradient_sync
from .process_group import all_gather_object as all_gather_object
from .process_group import all_reduce_sum as all_reduce_sum
from .process_group import broadcast_object as broadcast_object
from .process_group import is_distributed as is_distributed
from .process_group import is_main_process as is_main_process
from .process_group import rank as rank
from .process_group import world_size as world_size

__all__ = [
    "DataParallel",
    "all_gather_object",
    "all_reduce_sum",
    "broadcast_object",
    "destroy_distributed",
    "fsdp_modules",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "is_parallel",
    "no_gradient_sync",
    "rank",
    "set_epoch",
    "shard",
    "unwrap",
    "world_size",
    "wrap_model",
]
