"""What one replica tells the others, and how it counts what they told it.

Several replicas serve the same providers and policies, each from its own table. For limits
to hold fleet-wide, each replica regularly exports its own totals (requests and tokens per
provider over the sliding minute, in-flight leases, spend per policy in its budget window,
cooldowns and circuit flips) and takes in the latest totals of every other replica. Those are
*added* to its own when limits are compared; they never enter its own windows, so a replica
that stops exporting simply stops being counted, and a replica that exports again after an
outage sends totals, not increments: nothing is ever counted twice.

No route waits for the others: routing reads numbers that the edge (the shared-state sync
loop) refreshes every interval, so a burst can overshoot a limit by at most what every replica
admits within one interval. When the others cannot be heard from, each replica falls back to
its share of every limit: the limit divided by the replicas it last knew (``divide``).

Circuits flip fleet-wide: the latest flip (opened or closed) seen anywhere wins. Half-open
trials are gated: while the edge is connected, a circuit that opened stays blocked past its
cooldown until this replica is granted the fleet's one trial for that flip (``grant_trial``);
the edge arbitrates the grant with an atomic claim in the store. A granted trial that gets no
verdict within its timeout (``RoutingTable.trial_timeout``: the cooldown, at most a lease TTL)
fails like any failed trial: the circuit re-opens here, which is a new flip that the others
adopt, and the fleet then claims that flip's one trial. The edge keeps each claim until a trial
begun at the half-open would have timed out (``RoutingTable.trial_claim_seconds``), so a
winner that dies, or routes nothing, frees the trial then too.

Times here are engine-clock seconds; the edge converts them to wall-clock time on the wire.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from provider_router.engine._policy import PolicyState
from provider_router.engine._state import ProviderKey, ProviderState

PENDING_TRIAL: Final = "fleet:pending"
"""Stands in for a trial lease while the fleet's one half-open trial is not granted here: the
breaker then reads as 'trial in flight' and the provider takes no route."""

OPENED: Final = "open"
CLOSED: Final = "closed"


@dataclass(frozen=True, slots=True)
class Flip:
    """A circuit opening or closing somewhere in the fleet. ``flip_id`` names it the same on
    every replica, so that the fleet can agree on which flip a half-open trial belongs to."""

    kind: str
    at: float
    until: float | None
    flip_id: str


@dataclass(slots=True)
class ProviderFigures:
    """One replica's own figures for one provider."""

    requests: float = 0.0
    tokens: float = 0.0
    in_flight: int = 0
    cooling_until: float | None = None
    flip: Flip | None = None


@dataclass(slots=True)
class FleetSnapshot:
    """Everything one replica exports, at one moment."""

    providers: dict[ProviderKey, ProviderFigures] = field(default_factory=dict)
    spend: dict[tuple[str, str], float] = field(default_factory=dict)
    """Policy -> spend in its current budget window (policies with a budget only)."""

    def shifted(self, delta: float) -> FleetSnapshot:
        """The same snapshot with every time moved by ``delta`` seconds (clock conversion)."""
        def move(figures: ProviderFigures) -> ProviderFigures:
            flip = figures.flip
            if flip is not None:
                flip = replace(flip, at=flip.at + delta,
                               until=None if flip.until is None else flip.until + delta)
            cooling = None if figures.cooling_until is None else figures.cooling_until + delta
            return replace(figures, cooling_until=cooling, flip=flip)

        return FleetSnapshot({k: move(v) for k, v in self.providers.items()}, dict(self.spend))


class Fleet:
    """The table's view of the other replicas; the table calls ``adopt_*`` on upserts, the
    edge calls ``snapshot``, ``apply``, ``grant_trial`` and ``divide``."""

    def __init__(self, providers: Mapping[ProviderKey, ProviderState],
                 policies: Mapping[tuple[str, str], PolicyState],
                 touch: Callable[[ProviderState, float], None]) -> None:
        self._providers = providers
        self._policies = policies
        self._touch = touch
        self.share = 1.0
        """The fraction of every limit this replica enforces alone: 1 while it hears from the
        others (their totals are added instead), 1/N while it cannot."""
        self.replicas = 1
        """Replicas the share was computed for (this one included)."""
        self.gating = False
        """Whether half-open trials wait for a fleet grant (only while the store answers)."""
        self._origin = secrets.token_hex(4)
        self._flip_seq = itertools.count(1)
        self._flips: dict[ProviderKey, Flip] = {}
        """The latest flip known per provider, this replica's own or adopted."""
        self._seen_open: dict[ProviderKey, float | None] = {}
        """Each breaker's ``open_until`` when last looked at: a change is a local flip."""
        self._granted: dict[ProviderKey, str] = {}
        """The flip whose half-open trial this replica was granted, per provider."""

    # -- hooks for the table -----------------------------------------------------------------

    def adopt_provider(self, state: ProviderState, old: ProviderState | None) -> None:
        """Give a new or replaced provider the fleet's current figures."""
        state.share = self.share
        if old is not None:
            state.others_requests, state.others_tokens = old.others_requests, old.others_tokens
            state.others_in_flight = old.others_in_flight

    def adopt_policy(self, state: PolicyState, old: PolicyState | None) -> None:
        state.share = self.share
        if old is not None and old.spend is not None and state.spend is not None and (
                old.spend.span == state.spend.span):
            state.others_spend = old.others_spend

    # -- the edge's side ---------------------------------------------------------------------

    def snapshot(self, now: float) -> FleetSnapshot:
        """This replica's own totals now, noting any circuit that flipped since last time."""
        out = FleetSnapshot()
        for key, state in self._providers.items():
            flip = self._note_flip(key, state, now)
            cooling = state.cooling_until if (state.cooling_until is not None
                                              and state.cooling_until > now) else None
            out.providers[key] = ProviderFigures(
                state.requests.total(now), state.tokens.total(now), state.in_flight,
                cooling, flip)
        for key, policy in self._policies.items():
            if policy.spend is not None:
                out.spend[key] = policy.spend.total(now)
        if len(self._seen_open) > len(self._providers):  # forget providers that have left
            for gone in [k for k in self._seen_open if k not in self._providers]:
                self._seen_open.pop(gone, None)
                self._flips.pop(gone, None)
                self._granted.pop(gone, None)
        return out

    def apply(self, others: Iterable[FleetSnapshot], now: float,
              replicas: int | None = None) -> list[tuple[ProviderKey, str]]:
        """Take in the other replicas' latest snapshots (engine-clock times), count their
        totals from now on, adopt newer circuit flips and longer cooldowns, and gate
        half-open trials. ``replicas`` is how many are alive, this one included (default:
        the snapshots given plus this one). Returns the trials to claim: ``(provider, flip
        id)``."""
        others = list(others)
        requests: dict[ProviderKey, float] = {}
        tokens: dict[ProviderKey, float] = {}
        in_flight: dict[ProviderKey, int] = {}
        cooling: dict[ProviderKey, float] = {}
        latest: dict[ProviderKey, Flip] = {}
        spend: dict[tuple[str, str], float] = {}
        for snap in others:
            for key, fig in snap.providers.items():
                requests[key] = requests.get(key, 0.0) + fig.requests
                tokens[key] = tokens.get(key, 0.0) + fig.tokens
                in_flight[key] = in_flight.get(key, 0) + fig.in_flight
                if fig.cooling_until is not None and fig.cooling_until > cooling.get(key, now):
                    cooling[key] = fig.cooling_until
                if fig.flip is not None and (key not in latest or fig.flip.at > latest[key].at):
                    latest[key] = fig.flip
            for policy_key, spent in snap.spend.items():
                spend[policy_key] = spend.get(policy_key, 0.0) + spent
        self.share, self.gating = 1.0, True
        self.replicas = max(1, replicas if replicas is not None else len(others) + 1)
        claims: list[tuple[ProviderKey, str]] = []
        for key, state in self._providers.items():
            changed = self._set_figures(state, requests.get(key, 0.0), tokens.get(key, 0.0),
                                        in_flight.get(key, 0), 1.0)
            until = cooling.get(key)
            if until is not None and (state.cooling_until is None or until > state.cooling_until):
                state.cooling_until, changed = until, True
            flip = latest.get(key)
            own = self._flips.get(key)
            # The same flip comes back from every replica that adopted it (its time moved
            # by clock conversions): only a different, later one is news.
            if flip is not None and (own is None or (flip.flip_id != own.flip_id
                                                     and flip.at > own.at)):
                self._adopt_flip(key, state, flip)
                changed = True
            changed |= self._gate(key, state, claims)
            if changed:
                self._touch(state, now)
        for policy_key, policy in self._policies.items():
            policy.others_spend, policy.share = spend.get(policy_key, 0.0), 1.0
        return claims

    def grant_trial(self, key: ProviderKey, flip_id: str, now: float) -> bool:
        """This replica won the fleet's half-open trial for ``flip_id``: let one route try."""
        state = self._providers.get(key)
        flip = self._flips.get(key)
        if state is None or flip is None or flip.flip_id != flip_id:
            return False
        self._granted[key] = flip_id
        if state.breaker.trial == PENDING_TRIAL:
            state.breaker.trial = None
            self._touch(state, now)
        return True

    def divide(self, replicas: int, now: float) -> None:
        """Enforce 1/``replicas`` of every limit alone, the others' totals set aside: for when
        they cannot be heard from, or are known only by count. Trials are no longer gated."""
        replicas = max(1, replicas)
        self.share, self.replicas, self.gating = 1.0 / replicas, replicas, False
        for state in self._providers.values():
            changed = self._set_figures(state, 0.0, 0.0, 0, self.share)
            if state.breaker.trial == PENDING_TRIAL:
                state.breaker.trial, changed = None, True
            if changed:
                self._touch(state, now)
        for policy in self._policies.values():
            policy.others_spend, policy.share = 0.0, self.share

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _set_figures(state: ProviderState, requests: float, tokens: float, in_flight: int,
                     share: float) -> bool:
        if (state.others_requests == requests and state.others_tokens == tokens
                and state.others_in_flight == in_flight and state.share == share):
            return False
        state.others_requests, state.others_tokens = requests, tokens
        state.others_in_flight, state.share = in_flight, share
        return True

    def _note_flip(self, key: ProviderKey, state: ProviderState, now: float) -> Flip | None:
        open_until = state.breaker.open_until
        if key not in self._seen_open or self._seen_open[key] != open_until:
            was_seen = key in self._seen_open
            self._seen_open[key] = open_until
            if open_until is not None:
                self._flips[key] = Flip(OPENED, now, open_until, self._new_flip_id())
            elif was_seen:  # a circuit closed here (a first look at a closed one is no flip)
                self._flips[key] = Flip(CLOSED, now, None, self._new_flip_id())
        return self._flips.get(key)

    def _new_flip_id(self) -> str:
        return f"{self._origin}-{next(self._flip_seq)}"

    def _adopt_flip(self, key: ProviderKey, state: ProviderState, flip: Flip) -> None:
        breaker = state.breaker
        if flip.kind == OPENED:
            breaker.open_until, breaker.trial = flip.until, None
        else:
            breaker.record_success()
        self._flips[key] = flip
        self._seen_open[key] = breaker.open_until

    def _gate(self, key: ProviderKey, state: ProviderState,
              claims: list[tuple[ProviderKey, str]]) -> bool:
        """Hold an open circuit's half-open trial until this replica is granted it."""
        breaker, flip = state.breaker, self._flips.get(key)
        if breaker.open_until is None or flip is None or flip.kind != OPENED:
            return False
        if self._granted.get(key) == flip.flip_id:
            return False
        changed = False
        if breaker.trial is None:
            breaker.trial, changed = PENDING_TRIAL, True
        if breaker.trial == PENDING_TRIAL:
            claims.append((key, flip.flip_id))
        return changed
