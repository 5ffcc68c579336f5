"""Twilio webhook and simulator benchmark: what signature checking and parsing cost per
webhook, and how fast the real SDK sends through the local simulator.

Run ``python -m benchmarks.twilio_bench [--webhooks N] [--sends N]`` (defaults 20,000 and
300). It prints a table of figures and ratios. Not a test: nothing fails on a number.

1. Verify + parse: an inbound webhook (the section 1.3 STOP form, 23 fields) checked with
   ``connector.providers.twilio.signature.verify`` and parsed with ``parse_inbound``, one at a
   time; p50 / p99 in microseconds, and the ratio of p99 to a 1 ms share of the 10 ms
   webhook-answer budget (product design section 9). Baseline: twilio-python's own
   ``RequestValidator.validate`` on the same request (ratio = ours / baseline).
2. Tampered: the same with a forged signature (the reject path must cost no more).
3. Sends: ``TwilioProvider.send`` through the simulator over loopback HTTP, sequentially;
   messages per second, and callbacks posted per second by the simulator to a receiver.
   Measured at about 45 ms per request: the loopback server helper binds its socket with
   protocol 0, so asyncio does not set TCP_NODELAY on accepted connections and Nagle meets
   delayed ACK. A socket made with ``IPPROTO_TCP`` answers the same request in about 0.4 ms.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.responses import Response
from rich.console import Console
from rich.table import Table
from twilio.request_validator import RequestValidator

from connector.bootstrap.server_thread import running
from connector.domain.provider_messages import SendRequest
from connector.emulators.twilio.app import create_simulator_app
from connector.emulators.twilio.engine import SimulatorEngine
from connector.errors import SignatureError
from connector.log_config import configure_logging
from connector.providers.twilio.client import TwilioProvider
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from connector.providers.twilio.forms import parse_inbound
from connector.providers.twilio.signature import compute_signature, verify

BUDGET_US = 1000.0
URL = "https://connector.example.com/webhooks/twilio/messages"
FORM = parse_qsl(
    "ToCountry=US&ToState=CA&SmsMessageSid=SM1234567890abcdef1234567890abcdef&NumMedia=0&"
    "ToCity=SAN+FRANCISCO&FromZip=94105&SmsSid=SM1234567890abcdef1234567890abcdef&FromState=CA&"
    "SmsStatus=received&FromCity=SAN+FRANCISCO&Body=STOP&FromCountry=US&To=%2B14155550100&"
    "MessagingServiceSid=MG1234567890abcdef1234567890abcdef&ToZip=94105&NumSegments=1&"
    "MessageSid=SM1234567890abcdef1234567890abcdef&AccountSid=AC1234567890abcdef1234567890abcdef&"
    "From=%2B14155550199&ApiVersion=2010-04-01&OptOutType=STOP"
)


def timings_us(operation: Callable[[], object], count: int) -> list[float]:
    """Microseconds per call of ``operation``, ``count`` times."""
    out = []
    for _ in range(count):
        started = time.perf_counter()
        operation()
        out.append((time.perf_counter() - started) * 1e6)
    return out


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def webhook_figures(count: int) -> list[tuple[str, float, str]]:
    """Verify+parse, the twilio-python baseline, and the reject path."""
    good = compute_signature(URL, FORM, LOCAL_AUTH_TOKEN)
    validator = RequestValidator(LOCAL_AUTH_TOKEN)

    def ours() -> None:
        verify(URL, FORM, good, [LOCAL_AUTH_TOKEN])
        parse_inbound(FORM)

    def baseline() -> None:
        assert validator.validate(URL, dict(FORM), good)
        parse_inbound(FORM)

    def forged() -> None:
        try:
            verify(URL, FORM, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", [LOCAL_AUTH_TOKEN])
        except SignatureError:
            return

    mine, base, bad = (timings_us(f, count) for f in (ours, baseline, forged))
    p99 = pct(mine, 0.99)
    return [
        ("verify+parse p50 (µs)", pct(mine, 0.5), f"{pct(mine, 0.5) / pct(base, 0.5):.2f}x base"),
        ("verify+parse p99 (µs)", p99, f"{p99 / BUDGET_US:.3f} of 1 ms"),
        ("twilio-python validate+parse p50 (µs)", pct(base, 0.5), "baseline"),
        ("forged signature rejected p99 (µs)", pct(bad, 0.99), f"{pct(bad, 0.99) / p99:.2f}x ok"),
    ]


def send_figures(count: int) -> list[tuple[str, float, str]]:
    """Sequential sends through the simulator, and callback delivery rate."""
    receiver = FastAPI()

    @receiver.post("/webhooks/twilio/status/{message_id}")
    def status(message_id: str) -> Response:
        return Response(status_code=200)

    engine = SimulatorEngine()
    with running(create_simulator_app(engine)) as sim, running(receiver) as base:
        provider = TwilioProvider(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, public_base_url=base,
                                  api_base_url=sim)  # fmt: skip
        started = time.perf_counter()
        for n in range(count):
            provider.send(SendRequest(message_id=f"m{n}", to="+14155550100", body="Hello",
                                      from_number="+15005550006"))  # fmt: skip
        sent_s = time.perf_counter() - started
        engine.wait_idle(120)
        done_s = time.perf_counter() - started
        engine.close()
    callbacks = len(engine.deliveries)
    each_ms = sent_s * 1000 / count
    return [
        ("sends per second (SDK -> simulator)", count / sent_s, f"{each_ms:.1f} ms each"),
        ("callbacks posted per second", callbacks / done_s, f"{callbacks} callbacks"),
    ]


def main() -> None:
    """Run both parts and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--webhooks", type=int, default=20_000)
    parser.add_argument("--sends", type=int, default=300)
    args = parser.parse_args()
    configure_logging("WARNING")
    table = Table(title="Twilio webhooks and simulator")
    for column in ("figure", "value", "ratio"):
        table.add_column(column)
    for name, value, ratio in webhook_figures(args.webhooks) + send_figures(args.sends):
        table.add_row(name, f"{value:,.1f}", ratio)
    Console().print(table)


if __name__ == "__main__":
    main()
