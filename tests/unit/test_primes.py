"""PrimeChecker is exact: Carmichael numbers, strong pseudoprimes, Mersenne primes, edges."""

from __future__ import annotations

import gmpy2
import pytest

from jobgate.algorithms import InvalidParams
from jobgate.algorithms.primes import check_params, check_prime


def run(number: object) -> dict[str, object]:
    return check_prime(check_params({"number": number}))


@pytest.mark.parametrize("n", [0, 1, -1, -2, -7, -97, "-13"])
def test_below_two_is_not_prime(n: object) -> None:
    assert run(n)["isPrime"] is False


@pytest.mark.parametrize("n", [2, 3, 5, 97, 7919, 2**31 - 1, 2**61 - 1, 18446744073709551557])
def test_small_primes_are_proven(n: int) -> None:
    result = run(n if n < 2**63 else str(n))
    assert result["isPrime"] is True
    assert result["certainty"] == "proven"


CARMICHAEL = [561, 1105, 1729, 2465, 2821, 6601, 8911, 41041, 825265, 321197185]
# Strong pseudoprimes to base 2 (OEIS A001262), and one to bases 2..11 (Jaeschke's 3.4e12).
STRONG_PSP2 = [
    2047,
    3277,
    4033,
    4681,
    8321,
    15841,
    29341,
    42799,
    49141,
    52633,
    3215031751,
    2152302898747,
    3474749660383,
    341550071728321,
]


@pytest.mark.parametrize("n", CARMICHAEL + STRONG_PSP2)
def test_pseudoprimes_are_composite_with_a_factor(n: int) -> None:
    result = run(n)
    assert result["isPrime"] is False
    factor = int(result["factor"])  # type: ignore[call-overload]
    assert 1 < factor < n and n % factor == 0


@pytest.mark.parametrize("p", [89, 107, 127, 521, 607, 1279, 2203, 2281, 3217, 4253, 4423, 9689])
def test_mersenne_primes_as_decimal_strings(p: int) -> None:
    number = str(2**p - 1)
    if len(number) > 4000:
        pytest.skip("beyond 4,000 digits")
    result = run(number)
    assert result["isPrime"] is True
    assert result["number"] == number
    assert result["certainty"] == "probable"


@pytest.mark.parametrize("p", [11, 23, 29, 37, 67, 257, 1277])
def test_mersenne_composites(p: int) -> None:
    assert run(str(2**p - 1))["isPrime"] is False


def test_product_of_two_large_primes_is_composite() -> None:
    a, b = gmpy2.next_prime(10**600), gmpy2.next_prime(10**700)
    assert run(str(a * b))["isPrime"] is False


def test_agrees_with_gmpy_on_a_range() -> None:
    for n in range(-5, 5000):
        assert run(n)["isPrime"] == bool(n >= 2 and gmpy2.is_prime(n)), n


def test_4000_digits_accepted_4001_refused() -> None:
    assert check_params({"number": "9" * 4000})["number"] == "9" * 4000
    with pytest.raises(InvalidParams, match="4,001 digits"):
        check_params({"number": "9" * 4001})


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("abc", "not a decimal integer"),
        ("12.5", "not a decimal integer"),
        ("", "not a decimal integer"),
        (12.5, "must be an integer"),
        (True, "must be an integer"),
        ([7], "integer or a decimal string"),
        (2**63, "beyond int64"),
        (None, "is required"),
    ],
)
def test_bad_numbers_are_refused_with_the_field_named(value: object, words: str) -> None:
    with pytest.raises(InvalidParams, match=r"spec\.params\.number") as info:
        check_params({"number": value} if value is not None else {})
    assert words in str(info.value)


def test_unknown_param_is_refused_not_ignored() -> None:
    with pytest.raises(InvalidParams, match=r"spec\.params\.digits is not a parameter"):
        check_params({"number": 7, "digits": 3})


def test_int64_edge_and_signs() -> None:
    assert run(2**63 - 1)["number"] == 2**63 - 1
    assert run("+97")["isPrime"] is True
    assert run(" 97 ")["number"] == 97
