"""Phone and segment benchmark: normalizations per second, lookup-key latency, segment counts.

Run ``python -m benchmarks.phone_bench [--numbers N]`` (default 50,000 distinct numbers from
twelve countries, half national spellings with a region chain, half international). It
prints a table of figures, the plain ``phonenumbers`` parse-and-format baseline they compare
with, and the ratio of the key latency to its goal: a tenth of the 1 ms that product design
section 10 allows a whole phone resolution. Not a test: nothing fails on a number.

1. Cold: every number parsed once (all cache misses): the phone-sync case.
2. Warm: the same numbers again (cached): the inbound case, where the same few numbers
   text again and again.
3. Segments: ``count_segments`` on a 300-character GSM-7 text and a 150-character UCS-2 one.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence

import phonenumbers
from phonenumbers import PhoneNumberFormat
from rich.console import Console
from rich.table import Table

from connector.domain.phone import lookup_key, normalize_many
from connector.domain.segments import count_segments

COUNTRIES = ("US", "CA", "GB", "DE", "FR", "IN", "BR", "AR", "MX", "AU", "JP", "IT")
KEY_GOAL_MS = 0.1


def sample_numbers(count: int, seed: int = 11) -> list[tuple[str, tuple[str, ...]]]:
    """``count`` distinct (spelling, region chain) pairs of valid numbers."""
    rng = random.Random(seed)
    out: dict[str, tuple[str, ...]] = {}
    kinds = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)
    while len(out) < count:
        region = rng.choice(COUNTRIES)
        example = phonenumbers.example_number_for_type(region, rng.choice(kinds))
        if example is None:
            continue
        nsn = phonenumbers.national_significant_number(example)
        tail = f"{rng.randrange(10_000):04d}"
        number = phonenumbers.parse(f"+{example.country_code}{nsn[:-4]}{tail}")
        if not phonenumbers.is_valid_number(number):
            continue
        national = rng.random() < 0.5
        fmt = PhoneNumberFormat.NATIONAL if national else PhoneNumberFormat.INTERNATIONAL
        chain = ("ZZ", region, "US") if national else ("US",)
        out[phonenumbers.format_number(number, fmt)] = chain
    return list(out.items())


def rate(func: Callable[[], object], items: int) -> tuple[float, float]:
    """(items per second, microseconds per item) of one call of ``func``."""
    started = time.perf_counter()
    func()
    elapsed = time.perf_counter() - started
    return items / elapsed, elapsed / items * 1e6


def baseline(numbers: Sequence[tuple[str, tuple[str, ...]]]) -> None:
    """Plain phonenumbers: parse with the chain's first real region, validate, format E.164."""
    for raw, chain in numbers:
        number = phonenumbers.parse(raw, chain[1] if len(chain) > 1 else chain[0])
        phonenumbers.is_valid_number(number)
        phonenumbers.format_number(number, PhoneNumberFormat.E164)


def keys(numbers: Sequence[tuple[str, tuple[str, ...]]]) -> None:
    """The lookup key of each number."""
    for raw, chain in numbers:
        lookup_key(raw, chain)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--numbers", type=int, default=50_000)
    args = parser.parse_args(argv)
    numbers = sample_numbers(args.numbers)
    base_rate, base_us = rate(lambda: baseline(numbers), len(numbers))
    cold_rate, cold_us = rate(lambda: keys(numbers), len(numbers))
    warm_rate, warm_us = rate(lambda: keys(numbers), len(numbers))
    chain = ("GB",)
    batch = [raw for raw, _ in numbers[:10_000]]
    batch_rate, batch_us = rate(lambda: normalize_many(batch, chain), len(batch))
    gsm, ucs = "Your order is ready {ref} " * 12, "Ihre Bestellung ist fertig ✓ " * 5
    gsm_rate, gsm_us = rate(lambda: [count_segments(gsm) for _ in range(20_000)], 20_000)
    ucs_rate, ucs_us = rate(lambda: [count_segments(ucs) for _ in range(20_000)], 20_000)

    table = Table(title=f"Phone numbers ({len(numbers):,} distinct) and segments")
    for col in ("figure", "per second", "µs each", "vs baseline", "vs goal"):
        table.add_column(col, justify="left" if col == "figure" else "right")

    def row(name: str, per_s: float, each_us: float, goal: bool = False, base: bool = True) -> None:
        ratio = f"{each_us / base_us:.2f}x" if base else "-"
        vs_goal = f"{each_us / 1000 / KEY_GOAL_MS:.3f}" if goal else "-"
        table.add_row(name, f"{per_s:,.0f}", f"{each_us:.1f}", ratio, vs_goal)

    row("baseline: phonenumbers parse+valid+E.164", base_rate, base_us)
    row("lookup_key, cold (sync)", cold_rate, cold_us, goal=True)
    row("lookup_key, warm (inbound)", warm_rate, warm_us, goal=True)
    row("normalize_many, GB chain, 10k", batch_rate, batch_us)
    row(f"count_segments GSM-7 {len(gsm)} chars", gsm_rate, gsm_us, base=False)
    row(f"count_segments UCS-2 {len(ucs)} chars", ucs_rate, ucs_us, base=False)
    Console(width=120).print(table)
    print(f"goal: lookup key under {KEY_GOAL_MS} ms; 'vs goal' below 1 meets it")


if __name__ == "__main__":
    main()
