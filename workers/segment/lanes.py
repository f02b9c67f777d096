"""Independent pieces of work on the CPU's cores, one core each.

On a CPU, the decoder's per-prompt products and the stability filter's per-candidate
steps are too small to keep several cores busy inside one operation: splitting the
work into lanes, threads whose operations each run on one thread, keeps every core busy.
On a GPU there is one lane: kernels are already parallel.

torch's thread count is per thread (OpenMP's and MKL's settings are), but
``torch.set_num_threads`` also sets the count a new thread starts with. Each lane sets
its own to 1; when the last lanes of the process end, the starting count is put back
as the first of them found it. A thread that starts while lanes run starts with 1.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

Item = TypeVar("Item")
Result = TypeVar("Result")

_lock = threading.Lock()
_running = 0  # calls of in_lanes with lanes running, over all threads
_restore = 1  # the thread count the first of them found


def cpu_lanes(device: torch.device, pieces: int) -> int:
    """How many lanes ``pieces`` independent pieces get on ``device``: the calling
    thread's torch threads on a CPU (at most one lane per piece; 1 inside a lane), 1
    elsewhere."""
    if device.type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), pieces))


def in_lanes(fn: Callable[[Item], Result], items: Sequence[Item], lanes: int) -> list[Result]:
    """``[fn(item) for item in items]`` in inference mode (which, like grad mode, is per
    thread), in order; with ``lanes`` > 1 in that many threads of one op-thread each."""
    def run(item: Item) -> Result:
        with torch.inference_mode():
            return fn(item)

    def run_on_one_thread(item: Item) -> Result:
        torch.set_num_threads(1)
        return run(item)

    if lanes <= 1:
        return [run(item) for item in items]
    global _running, _restore
    with _lock:
        if _running == 0:
            _restore = torch.get_num_threads()
        _running += 1
    try:
        with ThreadPoolExecutor(lanes) as pool:
            return list(pool.map(run_on_one_thread, items))
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                torch.set_num_threads(_restore)  # what new threads start with, as it was
