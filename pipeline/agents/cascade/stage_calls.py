"""Calling one of a cascade's stages: retried within the turn's deadline, each attempt with
its own request id and a timeout that never outlasts the deadline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pipeline.agents.cascade.config import CascadeConfig
from pipeline.agents.cascade.stages import Attempt, Stage
from pipeline.agents.retry import Deadline, DeadlineExceeded, retry_within
from pipeline.call_logger import CallLog

T = TypeVar("T")

#: shortest timeout an attempt gets, even when the deadline is nearly spent
MIN_ATTEMPT_TIMEOUT_S = 0.05


class StageCalls:
    def __init__(self, call_id: str, config: CascadeConfig, log: CallLog) -> None:
        self._call_id = call_id
        self._cfg = config
        self._log = log

    async def run(
        self,
        stage: Stage,
        attempt: Callable[[], Awaitable[T]],
        deadline: Deadline,
        may_retry: Callable[[], bool] = lambda: True,
    ) -> T:
        """``attempt`` until it succeeds, fails for good, or the deadline passes; a
        permanent failure is reported to the operator once."""
        try:
            return await retry_within(
                attempt,
                deadline,
                stage.classify,
                what=f"{stage.provider} {stage.kind}",
                policy=self._cfg.retry,
                may_retry=may_retry,
                logger=self._log,
            )
        except DeadlineExceeded:
            raise
        except Exception as exc:
            if stage.classify(exc) is None:
                stage.report_permanent(exc)
            raise

    def attempt(self, turn_id: int, stage: str, deadline: Deadline) -> Attempt:
        request_id = f"{self._call_id}-{turn_id}-{stage}"
        return Attempt(turn_id, request_id, self.timeout_s(deadline))

    def timeout_s(self, deadline: Deadline) -> float:
        return max(MIN_ATTEMPT_TIMEOUT_S, min(self._cfg.request_timeout_s, deadline.remaining_s()))
