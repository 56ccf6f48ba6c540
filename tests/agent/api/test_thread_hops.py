"""A POS request hands its use case to the thread pool once at most.

Each hop to the pool and back wakes a thread, and on a busy or virtual machine a wake-up
is much of a request's overhead (docs/performance.md, "holds: where the time goes"). A
plain ``def`` handler with a response model made two: FastAPI checked its answer against
the model in the pool as well. A standalone till's calculate makes none while the data file
is free: it runs on the event loop (``test_direct.py``).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import pytest

from tests.conftest import ANNA, line


def test_each_receipt_call_makes_one_hop_to_the_thread_pool_and_a_calculate_none(
    make_till: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = make_till()
    hops: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", type(func).__name__))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    calls = [
        (0, lambda: till.calc("R-1", [line("A", "100.00")], card=ANNA)),
        (1, lambda: till.confirm("R-1")),
        (1, lambda: till.http.post("/v1/receipts/R-1/refund", json={"refund_id": "F-1"})),
        (0, lambda: till.calc("R-2", [line("A", "100.00")])),
        (1, lambda: till.http.post("/v1/receipts/R-2/cancel")),
        (1, lambda: till.http.get(f"/v1/cards/{ANNA}")),
    ]
    for expected, call in calls:
        hops.clear()
        r = call()
        assert r.status_code == 200, r.text
        assert len(hops) == expected, (r.request.url.path, hops)
