"""``PrimeChecker``: is ``params.number`` prime? Exact, for integers and decimal strings.

The number arrives as a JSON integer or as a decimal string of up to 4,000 digits (JSON
integers beyond int64 do not survive the Kubernetes API, so big numbers must be strings).
Primality uses GMP through gmpy2: trial division, Baillie-PSW, then Miller-Rabin rounds. A
"composite" answer is always certain (a witness was found); a "prime" answer is proven below
2**64, where BPSW is known to be exact, and beyond that carries ``certainty: probable`` (no
BPSW counterexample is known). When the number is composite, a factor is reported if a cheap
search finds one (trial division to 10**5, then a bounded Pollard-Brent rho).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import gmpy2

from jobgate.algorithms import Algorithm, InvalidParams, Params, Result, reject_unknown

MAX_DIGITS = 4000
INT64_MAX = 2**63 - 1
PROVEN_BELOW = 2**64
TRIAL_LIMIT = 100_000
RHO_ITERATIONS = 20_000
_DECIMAL = re.compile(r"[+-]?[0-9]+")


def check_params(params: Mapping[str, Any]) -> Params:
    """Normalise ``number`` to a decimal string; refuse anything that is not an exact integer."""
    reject_unknown("PrimeChecker", params, ["number"])
    number = params.get("number")
    if number is None:
        raise InvalidParams(
            "spec.params.number is required: an integer, or a decimal string of up to "
            f"{MAX_DIGITS:,} digits"
        )
    if isinstance(number, (bool, float)):
        raise InvalidParams(
            f"spec.params.number must be an integer, got {number!r}; write big numbers as a "
            'decimal string, e.g. number: "170141183460469231731687303715884105727"'
        )
    if isinstance(number, int):
        if abs(number) > INT64_MAX:
            raise InvalidParams(
                f"spec.params.number {number} is beyond int64, and JSON integers that large are "
                'rounded by the Kubernetes API; write it as a decimal string (number: "...")'
            )
        return {"number": str(number)}
    if isinstance(number, str):
        text = number.strip().replace("_", "")
        if not _DECIMAL.fullmatch(text):
            raise InvalidParams(
                f"spec.params.number {_preview(number)} is not a decimal integer; use digits "
                "only, with an optional leading sign"
            )
        digits = len(text.lstrip("+-"))
        if digits > MAX_DIGITS:
            raise InvalidParams(
                f"spec.params.number has {digits:,} digits; PrimeChecker takes up to {MAX_DIGITS:,}"
            )
        return {"number": str(gmpy2.mpz(text))}
    raise InvalidParams(
        f"spec.params.number must be an integer or a decimal string, got {type(number).__name__}"
    )


def check_prime(params: Params) -> Result:
    """Runs in a worker process: the answer, its certainty, and a cheap factor if composite."""
    n = gmpy2.mpz(params["number"])
    result: Result = {"number": _json_int(n)}
    if n < 2:
        result.update(isPrime=False, certainty="proven")
        return result
    prime = bool(gmpy2.is_prime(n))
    result["isPrime"] = prime
    result["certainty"] = "proven" if not prime or n < PROVEN_BELOW else "probable"
    if not prime:
        factor = small_factor(n)
        if factor is not None:
            result["factor"] = _json_int(factor)
    return result


def small_factor(n: Any) -> Any | None:
    """A nontrivial factor of composite ``n`` if a bounded search finds one, else None."""
    limit = min(TRIAL_LIMIT, int(gmpy2.isqrt(n)))
    if limit >= 2:
        common = gmpy2.gcd(n, gmpy2.primorial(limit))
        if common > 1:
            p = gmpy2.mpz(2)
            while common % p:
                p = gmpy2.next_prime(p)
            return p
    return _pollard_brent(n, RHO_ITERATIONS)


def _pollard_brent(n: Any, budget: int) -> Any | None:
    """Brent's variant of Pollard rho with a fixed iteration budget (cheap or nothing)."""
    for c in (1, 3, 5):
        y, r, q, g = gmpy2.mpz(2), 1, gmpy2.mpz(1), gmpy2.mpz(1)
        x = ys = y
        spent = 0
        while g == 1 and spent < budget:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(128, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = gmpy2.gcd(q, n)
                k += 128
            spent += r
            r *= 2
        if g == n:  # the batch overshot: step back one at a time
            g = gmpy2.mpz(1)
            while g == 1:
                ys = (ys * ys + c) % n
                g = gmpy2.gcd(abs(x - ys), n)
        if 1 < g < n:
            return g
    return None


def _json_int(n: Any) -> int | str:
    """Numbers that fit int64 stay JSON integers; larger ones travel as decimal strings."""
    return int(n) if abs(n) <= INT64_MAX else str(n)


def _preview(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


PRIME_CHECKER = Algorithm(
    name="PrimeChecker",
    check_params=check_params,
    compute=check_prime,
    description="Is params.number prime? Integer or decimal string up to 4,000 digits.",
)
