"""The circuit breaker: closed, open for a cooldown, then half-open for exactly one trial.

State is derived from time rather than stored, so that no timer is needed to move from open to
half-open: ``open_until`` in the past means half-open.

A trial waits for its verdict for one cooldown at most (never past the lease TTL): a trial
with no verdict by then counts as a failed one, and the circuit opens for another cooldown.
Failed rather than abandoned, because a call that neither succeeds nor fails within a cooldown
is what a hung provider looks like, and a timeout is a failure everywhere else in the router;
letting the next route start a trial at once would instead send every route, one after the
other, to a provider that hangs. Either way the provider is blocked no longer than before
(then, for the trial lease's whole TTL, 120 s by default): at most a cooldown waiting for the
verdict plus a cooldown open. A verdict that comes later still counts: a success closes the
circuit.
"""

from __future__ import annotations

from provider_router.api import CircuitState


class CircuitBreaker:
    __slots__ = ("cooldown", "failures", "open_until", "threshold", "trial", "trial_deadline")

    def __init__(self, threshold: int = 3, cooldown: float = 30.0) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.open_until: float | None = None
        self.trial: str | None = None
        self.trial_deadline: tuple[str, float] | None = None
        """``(lease id, time)``: when the trial of that lease counts as failed. Read only
        while ``trial`` still names that lease, so whoever clears ``trial`` (the fleet too)
        needs not clear this."""

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

    def trial_timeout(self, lease_ttl: float) -> float:
        """How long a trial waits for its verdict: one cooldown, at most the lease TTL."""
        return min(self.cooldown, lease_ttl)

    def begin_trial(self, lease_id: str, now: float, lease_ttl: float) -> None:
        self.trial = lease_id
        self.trial_deadline = (lease_id, now + self.trial_timeout(lease_ttl))

    def end_trial(self, lease_id: str) -> None:
        """The trial ended with no verdict (lease expired, or the provider said 429)."""
        if self.trial == lease_id:
            self.trial = None

    def trial_expires_at(self) -> float | None:
        """When the trial in flight counts as failed; None if no trial of ours is out."""
        deadline = self.trial_deadline
        if deadline is None or deadline[0] != self.trial:
            return None
        return deadline[1]

    def expire_trial(self, now: float) -> bool:
        """Fail the trial in flight if its verdict is overdue; True if the circuit re-opened.
        It failed at its deadline, however late the table looks: the cooldown runs from then."""
        expires = self.trial_expires_at()
        if expires is None or now < expires:
            return False
        self.trial_deadline = None
        return self.record_failure(expires)

    def trial_in_flight(self, now: float) -> bool:
        return self.trial is not None and self.state(now) is CircuitState.HALF_OPEN
