"""Results computed once per key, however many requests ask for them at the same moment.

The disclosure metrics take seconds of both cores to compute; forty analysts opening the same dashboard must cost
one computation, not forty, or every other request waits behind them. The first caller of a key computes; callers
arriving meanwhile wait for its result; later callers get it at once. The key carries whatever the result depends
on, so nothing is ever invalidated: a changed book is a new key, and the oldest keys are dropped past `size`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any


class SingleFlight:
    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._results: OrderedDict[Hashable, Future[Any]] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            future = self._results.get(key)
            owner = future is None
            if future is None:
                future = self._results[key] = Future()
                while len(self._results) > self.size:
                    self._results.popitem(last=False)
            else:
                self._results.move_to_end(key)
        if owner:
            try:
                future.set_result(compute())
            except BaseException as exc:  # the waiters get the same error; the next caller tries again
                with self._lock:
                    if self._results.get(key) is future:
                        del self._results[key]
                future.set_exception(exc)
        return future.result()
