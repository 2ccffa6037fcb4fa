"""Retrying transient failures with exponential backoff and full jitter.

Remote storage fails in passing: a connection is reset, a read times out, the service
answers 500/503 or asks us to slow down. Such a call is retried after a pause of
``uniform(0, min(max_delay, base_delay * 2**attempt))`` seconds ("full jitter", so many
clients that failed together do not come back together), up to ``max_attempts`` calls and
at most ``total_timeout`` seconds from the first call; then the last error is raised.

    >>> from vidlake.storage.retry import RetryPolicy, call_with_retry
    >>> policy = RetryPolicy(max_attempts=4, base_delay=0.05)
    >>> call_with_retry(lambda: fetch_it(), policy=policy, is_transient=lambda e: isinstance(e, TimeoutError))

Every provider takes a ``retry=RetryPolicy(...)``; without one, :func:`default_policy` reads
the environment:

=============================  =======  ================================================
variable                        default  meaning
=============================  =======  ================================================
``VIDLAKE_RETRY_ATTEMPTS``      6        calls in all (1 = no retries)
``VIDLAKE_RETRY_BASE_DELAY``    0.2      seconds; the pause before retry k is drawn from
                                         ``[0, min(max_delay, base * 2**k)]``
``VIDLAKE_RETRY_MAX_DELAY``     5        seconds, cap of one pause
``VIDLAKE_RETRY_TIMEOUT``       60       seconds from the first call after which no new
                                         attempt starts
=============================  =======  ================================================
"""
from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from ..errors import StorageError
from . import _forksafe

__all__ = ["RetryExhausted", "RetryPolicy", "call_with_retry", "default_policy", "exhausted_error"]

T = TypeVar("T")
log = logging.getLogger("vidlake.retry")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure.

    Attributes:
        max_attempts: calls in all, the first included (``1`` disables retries).
        base_delay: seconds; the pause before retry ``k`` (0-based) is drawn uniformly from
            ``[0, min(max_delay, base_delay * 2**k)]``.
        max_delay: cap of a single pause, seconds.
        total_timeout: no attempt starts later than this many seconds after the first one,
            and no pause runs past it.
        rng: random source for the jitter (a seeded ``random.Random`` makes pauses repeatable
            within a process; a forked child reseeds it from ``os.urandom``, so workers do
            not share one jitter sequence).
    """

    max_attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 5.0
    total_timeout: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.total_timeout <= 0:
            raise ValueError("base_delay and max_delay must be >= 0 and total_timeout > 0")
        _forksafe.register(self)

    def _after_fork_in_child(self) -> None:
        # forked loader workers must not all draw the parent's jitter sequence (and come back
        # together): each child reseeds from the OS
        seed = getattr(self.rng, "seed", None)
        if seed is not None:
            seed(int.from_bytes(os.urandom(16), "little"))

    def delay(self, retry: int) -> float:
        """The pause before retry number ``retry`` (0 = the first retry), with full jitter."""
        cap = min(self.max_delay, self.base_delay * (2 ** min(retry, 30)))
        return self.rng.uniform(0.0, cap)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


def default_policy() -> RetryPolicy:
    """The policy from ``VIDLAKE_RETRY_*`` environment variables (see the module docstring)."""
    return RetryPolicy(
        max_attempts=int(_env_float("VIDLAKE_RETRY_ATTEMPTS", 6)),
        base_delay=_env_float("VIDLAKE_RETRY_BASE_DELAY", 0.2),
        max_delay=_env_float("VIDLAKE_RETRY_MAX_DELAY", 5.0),
        total_timeout=_env_float("VIDLAKE_RETRY_TIMEOUT", 60.0),
    )


class RetryExhausted(Exception):
    """Raised by :func:`call_with_retry` when a transient failure outlived the policy.

    ``last`` is the final exception, ``attempts`` the number of calls made and ``elapsed``
    the seconds spent. Providers turn it into a :class:`vidlake.StorageError` naming the URL.
    """

    def __init__(self, last: BaseException, attempts: int, elapsed: float) -> None:
        super().__init__(f"gave up after {attempts} attempt{'s' if attempts != 1 else ''} in {elapsed:.1f} s: "
                         f"{type(last).__name__}: {last}")
        self.last = last
        self.attempts = attempts
        self.elapsed = elapsed


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy | None = None,
    is_transient: Callable[[BaseException], bool],
    what: str = "",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn()``; retry it while it raises an exception ``is_transient`` accepts.

    A non-transient exception propagates at once, unchanged. When the attempts or the time
    run out, :class:`RetryExhausted` is raised from the last exception. ``what`` names the
    operation in the debug log (never pass secrets in it).
    """
    policy = policy or default_policy()
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as e:
            if not is_transient(e):
                raise
            elapsed = time.monotonic() - start
            if attempt >= policy.max_attempts:
                raise RetryExhausted(e, attempt, elapsed) from e
            pause = policy.delay(attempt - 1)
            if elapsed + pause >= policy.total_timeout:
                raise RetryExhausted(e, attempt, elapsed) from e
            log.debug("%s: transient %s (%s); retry %d in %.2f s", what or "call", type(e).__name__, e,
                      attempt, pause)
            sleep(pause)


def exhausted_error(r: RetryExhausted, op: str, where: str,
                    describe: Callable[[BaseException], str]) -> StorageError:
    """The StorageError a remote provider raises when the retries of ``op`` on ``where`` ran out
    (one wording for S3, GCS and HTTP); ``describe`` renders the last failure, redacted."""
    return StorageError(f"{where}: {op} failed after {r.attempts} attempt{'s' if r.attempts != 1 else ''} in "
                        f"{r.elapsed:.1f} s: {describe(r.last)}")
