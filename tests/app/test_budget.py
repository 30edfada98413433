"""app/budget.py on its own: the decoding memory budget's order, waits, refusals and releases; giving memory back."""

from __future__ import annotations

import asyncio

import pytest

from app.budget import MemoryBudget, MemoryReturn, return_memory
from app.errors import ProblemError


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _hold(budget: MemoryBudget, cost: int, order: list[str], name: str, release: asyncio.Event) -> None:
    async with budget.hold(cost):
        order.append(name)
        await release.wait()


@pytest.mark.anyio
async def test_uploads_that_fit_run_together_and_the_rest_wait_in_order() -> None:
    budget = MemoryBudget(capacity=100, max_wait_s=5)
    order: list[str] = []
    first, second = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.ensure_future(_hold(budget, 60, order, "a", first))]
    await asyncio.sleep(0)
    tasks.append(asyncio.ensure_future(_hold(budget, 30, order, "b", second)))
    await asyncio.sleep(0)
    assert order == ["a", "b"]
    assert budget.held == 90
    # c (50) does not fit; d (5) would, but waits behind c: first come, first served.
    tasks.append(asyncio.ensure_future(_hold(budget, 50, order, "c", second)))
    await asyncio.sleep(0)
    tasks.append(asyncio.ensure_future(_hold(budget, 5, order, "d", second)))
    await asyncio.sleep(0.01)
    assert order == ["a", "b"]
    first.set()  # a leaves: 30 held, c (50) and then d (5) fit
    await asyncio.sleep(0.01)
    assert order == ["a", "b", "c", "d"]
    assert budget.held == 85
    second.set()
    await asyncio.gather(*tasks)
    assert budget.held == 0


@pytest.mark.anyio
async def test_an_upload_larger_than_the_budget_runs_alone() -> None:
    budget = MemoryBudget(capacity=100, max_wait_s=5)
    order: list[str] = []
    release = asyncio.Event()
    small = asyncio.ensure_future(_hold(budget, 10, order, "small", release))
    await asyncio.sleep(0)
    large = asyncio.ensure_future(_hold(budget, 500, order, "large", asyncio.Event()))
    await asyncio.sleep(0.01)
    assert order == ["small"]  # the large one waits for the small one to finish
    release.set()
    await asyncio.sleep(0.01)
    assert order == ["small", "large"]
    assert budget.held == 100
    large.cancel()
    await asyncio.gather(small, large, return_exceptions=True)
    assert budget.held == 0


@pytest.mark.anyio
async def test_a_wait_past_the_deadline_is_a_503_with_retry_after_and_frees_its_place() -> None:
    mib = 2**20
    budget = MemoryBudget(capacity=100 * mib, max_wait_s=0.05)
    release = asyncio.Event()
    holder = asyncio.ensure_future(_hold(budget, 100 * mib, [], "holder", release))
    await asyncio.sleep(0)
    with pytest.raises(ProblemError) as refused:
        async with budget.hold(40 * mib):
            pass
    assert refused.value.status == 503
    assert refused.value.code == "decoding_busy"
    assert refused.value.headers == {"Retry-After": "1"}
    assert "needs 40.0 MiB for decoding" in refused.value.detail
    assert "(100 MiB)" in refused.value.detail
    release.set()
    await holder
    assert budget.held == 0
    async with budget.hold(100 * mib):  # nothing left queued: the budget is whole again
        assert budget.held == 100 * mib


@pytest.mark.anyio
async def test_a_cancelled_waiter_leaves_the_queue_and_lets_the_next_in() -> None:
    budget = MemoryBudget(capacity=100, max_wait_s=5)
    order: list[str] = []
    release = asyncio.Event()
    holder = asyncio.ensure_future(_hold(budget, 80, order, "holder", release))
    await asyncio.sleep(0)
    blocked = asyncio.ensure_future(_hold(budget, 50, order, "blocked", release))
    await asyncio.sleep(0)
    behind = asyncio.ensure_future(_hold(budget, 20, order, "behind", release))
    await asyncio.sleep(0.01)
    assert order == ["holder"]
    blocked.cancel()  # the client went away: the one behind it fits now
    await asyncio.sleep(0.01)
    assert order == ["holder", "behind"]
    assert budget.held == 100
    release.set()
    await asyncio.gather(holder, behind, blocked, return_exceptions=True)
    assert budget.held == 0


def test_giving_memory_back_is_safe_to_call() -> None:
    return_memory()
    return_memory()


@pytest.mark.anyio
async def test_memory_goes_back_at_each_call_and_once_more_after_a_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    returns: list[float] = []
    monkeypatch.setattr("app.budget.return_memory", lambda: returns.append(asyncio.get_running_loop().time()))
    memory = MemoryReturn(quiet_s=0.05)
    for _ in range(3):
        memory.now_and_later()
        await asyncio.sleep(0.01)  # within the quiet time: the late return moves on
    assert len(returns) == 3
    await asyncio.sleep(0.15)
    assert len(returns) == 4  # one more for the burst, after the last call
    assert returns[-1] - returns[-2] >= 0.05
