"""Training on more than one process: the process group, data-parallel wrapping and sharding.

:mod:`~fluxtrain.distributed.process_group` answers rank queries and runs the collectives;
:mod:`~fluxtrain.distributed.data_parallel` shards the data and wraps the model in DDP.
Without a process group every function here is a no-op for one process.

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
    "is_distributed",
    "is_main_process",
    "rank",
    "set_epoch",
    "shard",
    "unwrap",
    "world_size",
    "wrap_model",
]
