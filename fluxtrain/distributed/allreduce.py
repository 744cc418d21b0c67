"""The gradient all-reduce the learner's DDP wrapper uses: the same bits whatever the buckets.

``DistributedDataParallel`` all-reduces gradients in buckets whose layout changes after the
first iteration of a wrapper (they are rebuilt in the order the gradients became ready). The
sum of 3 or more float values depends on which rank adds which part, and that depends on where
a value sits in the all-reduced buffer: a resumed run, whose new wrapper has the first
iteration's layout, would then differ from the uninterrupted run in the last bits. The
:class:`OrderedAllReduce` hook all-reduces each bucket's gradients laid out in the order of
``model.parameters()``, and the wrapper keeps all gradients in one bucket, so the buffer is the
same at every step of every wrapper and resumed runs match uninterrupted ones bitwise.

Examples:
    >>> import torch
    >>> hook = OrderedAllReduce(torch.nn.Linear(2, 1))
    >>> hook.calls
    0
"""

from typing import Any, cast

import torch
import torch.distributed as dist

ONE_BUCKET_MB = 2**20
"""A bucket size (MiB) that holds any model: every gradient in one bucket."""


class OrderedAllReduce:
    """A DDP communication hook: averages a bucket's gradients laid out in parameter order.

    Register its :meth:`reduce` with ``wrapper.register_comm_hook(group, hook.reduce)``. It
    costs one copy of the gradients into and out of a buffer per step; ``calls`` counts the
    buckets it reduced.

    Args:
        model: The wrapped module, whose ``parameters()`` order is the layout.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.order = {id(p): i for i, p in enumerate(model.parameters())}
        self.calls = 0

    def reduce(self, group: Any, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        """Averages ``bucket``'s gradients over ``group`` (DDP calls it for every bucket)."""
        self.calls += 1
        params, grads = bucket.parameters(), bucket.gradients()
        ordered = [grads[i] for i in sorted(range(len(params)), key=self._key(params))]
        flat = torch.cat([g.reshape(-1) for g in ordered])
        flat.div_(dist.get_world_size(group))
        work = dist.all_reduce(flat, group=group, async_op=True)

        def scatter(future: torch.futures.Future[Any]) -> torch.Tensor:
            future.wait()
            offset = 0
            for grad in ordered:
                grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
                offset += grad.numel()
            return bucket.buffer()

        return cast(dist.Work, work).get_future().then(scatter)

    def _key(self, params: list[torch.Tensor]) -> Any:
        return lambda i: self.order[id(params[i])]
