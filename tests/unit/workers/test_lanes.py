"""Lanes: independent work on the CPU's cores, one op-thread each, in order; torch's
thread counts as they were after; the decoder's prompt spans cover every prompt once,
in whole chunks."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import torch

from prodseg.workers.segment.lanes import cpu_lanes, in_lanes
from prodseg.workers.segment.sam2_decoder import prompt_spans


@pytest.fixture()
def two_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def count_in_a_new_thread() -> int:
    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    return seen[0]


def test_results_come_back_in_order_with_one_thread_per_op(two_threads: None) -> None:
    def work(k: int) -> tuple[int, int, bool]:
        return k * k, torch.get_num_threads(), torch.is_inference_mode_enabled()

    out = in_lanes(work, list(range(7)), lanes=2)
    assert [k for k, _, _ in out] == [k * k for k in range(7)]
    assert {threads for _, threads, _ in out} == {1}
    assert all(inference for _, _, inference in out)  # per thread, so set in each lane
    assert torch.get_num_threads() == 2
    assert count_in_a_new_thread() == 2


def test_lanes_from_two_threads_at_once_leave_the_counts_as_they_were(
        two_threads: None) -> None:
    ready = threading.Barrier(2)  # both callers have their thread count
    overlap = threading.Barrier(4)  # two lanes of each caller run at once
    counts: list[int] = []

    def caller() -> None:
        torch.get_num_threads()
        ready.wait(5)

        def work(k: int) -> int:
            overlap.wait(5)
            return k

        assert in_lanes(work, [0, 1], lanes=2) == [0, 1]
        counts.append(torch.get_num_threads())

    callers = [threading.Thread(target=caller) for _ in range(2)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(10)
    assert counts == [2, 2]
    assert torch.get_num_threads() == 2
    assert count_in_a_new_thread() == 2


def test_lanes_follow_the_threads_and_the_device(two_threads: None) -> None:
    assert cpu_lanes(torch.device("cpu"), 16) == 2
    assert cpu_lanes(torch.device("cpu"), 1) == 1
    assert cpu_lanes(torch.device("cuda"), 16) == 1
    inside = in_lanes(lambda _: cpu_lanes(torch.device("cpu"), 16), [0, 1], lanes=2)
    assert inside == [1, 1]  # no lanes inside a lane


@pytest.mark.parametrize(("count", "chunk", "lanes"),
                         [(1024, 4, 2), (7, 4, 2), (3, 4, 2), (10, 2, 3), (0, 4, 2), (5, 1, 8)])
def test_prompt_spans_cover_every_prompt_once_in_whole_chunks(count: int, chunk: int,
                                                              lanes: int) -> None:
    spans = prompt_spans(count, chunk, lanes)
    assert len(spans) <= lanes
    assert [k for lo, hi in spans for k in range(lo, hi)] == list(range(count))
    assert all(lo % chunk == 0 for lo, _ in spans)
    if count >= chunk * lanes:
        assert len(spans) == lanes
