"""Why a provider cannot take a request right now.

Eligibility is kept as a bit set per provider so that the hot path tests one integer; the
explanation path turns the bits back into the CamelCase reasons users read.
"""

from __future__ import annotations

from typing import Final


class Block:
    """Bit values; plain ints, because ``IntFlag`` arithmetic costs microseconds per route."""

    NONE: Final = 0
    DISABLED: Final = 1 << 0
    UNHEALTHY: Final = 1 << 1
    UNAUTHORIZED: Final = 1 << 2
    CIRCUIT_OPEN: Final = 1 << 3
    HALF_OPEN_TRIAL: Final = 1 << 4
    COOLING_DOWN: Final = 1 << 5
    AT_CAPACITY: Final = 1 << 6
    RPM_EXHAUSTED: Final = 1 << 7
    TPM_EXHAUSTED: Final = 1 << 8
    OVER_BUDGET: Final = 1 << 9
    REQUESTS_EXHAUSTED: Final = 1 << 10


CIRCUIT_BLOCKS = Block.CIRCUIT_OPEN | Block.HALF_OPEN_TRIAL

_REASONS: dict[int, str] = {
    Block.DISABLED: "Disabled",
    Block.UNHEALTHY: "Unhealthy",
    Block.UNAUTHORIZED: "Unauthorized",
    Block.CIRCUIT_OPEN: "CircuitOpen",
    Block.HALF_OPEN_TRIAL: "HalfOpenTrialInFlight",
    Block.COOLING_DOWN: "CoolingDown",
    Block.AT_CAPACITY: "AtMaxConcurrent",
    Block.RPM_EXHAUSTED: "RateLimitRPM",
    Block.TPM_EXHAUSTED: "RateLimitTPM",
    Block.OVER_BUDGET: "OverBudget",
    Block.REQUESTS_EXHAUSTED: "ProviderRequestsExhausted",
}

MISSING_CAPABILITY = "MissingCapability"
MODEL_NOT_SERVED = "ModelNotServed"


def reasons(blocks: int) -> list[str]:
    """The reasons named by ``blocks``, in a stable order."""
    return [name for flag, name in _REASONS.items() if blocks & flag]
