"""The circuit breaker: closed, open for a cooldown, then half-open for exactly one trial.

State is derived from time rather than stored, so that no timer is needed to move from open to
half-open: ``open_until`` in the past means half-open.
"""

from __future__ import annotations

from provider_router.api import CircuitState


class CircuitBreaker:
    __slots__ = ("cooldown", "failures", "open_until", "threshold", "trial")

    def __init__(self, threshold: int = 3, cooldown: float = 30.0) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.open_until: float | None = None
        self.trial: str | None = None

    def state(self, now: float) -> CircuitState:
        if self.open_until is None:
            return CircuitState.CLOSED
        return CircuitState.OPEN if now < self.open_until else CircuitState.HALF_OPEN

    def record_failure(self, now: float) -> bool:
        """Count a failure; returns True when this failure opened (or re-opened) the circuit."""
        self.failures += 1
        state = self.state(now)
        if state is CircuitState.OPEN:
            return False  # already open: failures seen during the cooldown do not extend it
        if state is CircuitState.HALF_OPEN or self.failures >= self.threshold:
            self.open_until = now + self.cooldown
            self.trial = None
            return True
        return False

    def record_success(self) -> bool:
        """A success closes the circuit; returns True if it was not closed before."""
        was_open = self.open_until is not None
        self.failures = 0
        self.open_until = None
        self.trial = None
        return was_open

    def begin_trial(self, lease_id: str) -> None:
        self.trial = lease_id

    def end_trial(self, lease_id: str) -> None:
        """The trial ended with no verdict (lease expired, or the provider said 429)."""
        if self.trial == lease_id:
            self.trial = None

    def trial_in_flight(self, now: float) -> bool:
        return self.trial is not None and self.state(now) is CircuitState.HALF_OPEN
