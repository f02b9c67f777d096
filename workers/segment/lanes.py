"""Independent pieces of work on the CPU's cores, one core each.

On a CPU, the decoder's per-prompt products and the stability filter's per-candidate
steps are too small to keep several cores busy inside one operation: splitting the
work into lanes, each running its operations on one thread, keeps every core busy.
torch's intra-op thread count is process-wide, so it is set to 1 while the lanes run
and restored after them. On a GPU there is one lane: kernels are already parallel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

Item = TypeVar("Item")
Result = TypeVar("Result")


def cpu_lanes(device: torch.device, pieces: int) -> int:
    """How many lanes ``pieces`` independent pieces get on ``device``: torch's threads on
    a CPU (at most one lane per piece), 1 elsewhere or when already inside a lane."""
    if device.type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), pieces))


@contextmanager
def one_thread_per_op() -> Iterator[None]:
    """torch's intra-op threads set to 1 for the block, restored after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def in_lanes(fn: Callable[[Item], Result], items: Sequence[Item], lanes: int) -> list[Result]:
    """``[fn(item) for item in items]``, in ``lanes`` threads of one op-thread each, in
    inference mode (which, like grad mode, is per thread); in order."""
    def run(item: Item) -> Result:
        with torch.inference_mode():
            return fn(item)

    if lanes <= 1:
        return [fn(item) for item in items]
    with one_thread_per_op(), ThreadPoolExecutor(lanes) as pool:
        return list(pool.map(run, items))
