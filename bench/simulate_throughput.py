"""Production rate of ``callstream simulate --rate 0`` into a fresh topic on the configured broker.

Measures (1) the pure generator alone, in this process, and (2) the real command as a
subprocess (generator child process + kafka-python producer, acks=all, idempotent)
into a new 8-partition topic, deleted afterwards. Prints one line per figure.

    python bench/simulate_throughput.py [--events 1000000] [--compression none]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
import uuid

from common.config import Settings
from streams import topics
from streams.simulator import generate

EVENTS_PER_CALL = 5.55  # measured average of the default mix, to size --calls
START_US = 1_795_500_000_000_000  # 2026-11-24, fixed: same calls every run


def bench_generator(calls: int) -> None:
    began = time.perf_counter()
    count = sum(1 for _ in generate("bench", calls, 50, START_US))
    elapsed = time.perf_counter() - began
    print(f"generator only: {count} messages in {elapsed:.1f} s = {count / elapsed:,.0f} messages/s")


def bench_command(calls: int, compression: str) -> None:
    settings = Settings.from_env()
    topic = f"bench-simulate-{uuid.uuid4().hex[:8]}"
    topics.ensure_topics(settings, [topics.TopicSpec(topic, 8, {"max.message.bytes": topics.MAX_MESSAGE_BYTES})])
    try:
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "callstream.cli", "simulate", "--calls", str(calls),
                               "--seed", "bench", "--start", "2026-11-24T06:00:00Z",
                               "--compression", compression, "--bootstrap", settings.bootstrap,
                               "--topic-events", topic], capture_output=True, text=True)
        wall = time.perf_counter() - began
        if done.returncode != 0:
            sys.exit(done.stderr.strip())
        events = int(re.search(r"(\d+) events", done.stdout).group(1))
        print(done.stdout.strip())
        print(f"command ({compression}): {events} events in {wall:.1f} s wall incl. start-up "
              f"= {events / wall:,.0f} events/s")
    finally:
        topics.delete_topics(settings, [topic])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--compression", default="none")
    parser.add_argument("--skip-generator", action="store_true")
    args = parser.parse_args()
    calls = int(args.events / EVENTS_PER_CALL)
    if not args.skip_generator:
        bench_generator(calls)
    bench_command(calls, args.compression)


if __name__ == "__main__":
    main()
