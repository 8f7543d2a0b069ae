"""``python -m tests.fuzz --minutes 30`` (``scripts/fuzz``): the long fuzz of the definition
reader, by hand. Coverage-guided with atheris when it is installed (``pip install
'.[fuzz]'``), else random mutations of the seeds (:mod:`tests.fuzz.harness`) until the time is
up. Every input that crashes a command is saved in ``tests/fixtures/fuzz-corpus/`` (named by
its hash), where the suite replays it as a regression test; the run exits 1 if it found any.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import random
import sys
import time

from tests.fuzz.harness import CORPUS, Crash, exercise, mutate, seeds


def save(data: bytes, crash: Crash) -> None:
    digest = hashlib.sha256(data).hexdigest()[:16]
    path = CORPUS / f"found-{digest}.bin"
    if not path.exists():
        path.write_bytes(data)
        print(f"crash saved as {path.name}: {crash}", file=sys.stderr)


def one(data: bytes, found: list[bytes]) -> None:
    try:
        exercise(data)
    except Crash as crash:
        found.append(data)
        save(data, crash)


def random_mode(deadline: float, seed: int) -> tuple[int, list[bytes]]:
    rnd = random.Random(seed)
    pool = seeds()
    found: list[bytes] = []
    runs = 0
    while time.monotonic() < deadline:
        one(mutate(rnd.choice(pool), rnd), found)
        runs += 1
    return runs, found


def atheris_mode(minutes: float) -> int:
    import atheris  # type: ignore[import-not-found]

    with atheris.instrument_imports(include=["engine.definition", "engine.schedule"]):
        import engine.definition  # noqa: F401
    pool = seeds()
    found: list[bytes] = []

    def test_one_input(data: bytes) -> None:
        provider = atheris.FuzzedDataProvider(data)
        choice = provider.ConsumeIntInRange(0, 2)
        if choice == 0:  # the bytes themselves
            one(provider.ConsumeBytes(len(data)), found)
        else:  # a seed, mutated as the rest of the data decides
            seed = pool[provider.ConsumeIntInRange(0, len(pool) - 1)]
            rnd = random.Random(provider.ConsumeBytes(16))
            one(mutate(seed, rnd), found)

    atheris.Setup([sys.argv[0], f"-max_total_time={int(minutes * 60)}", "-rss_limit_mb=4096"],
                  test_one_input)
    with contextlib.suppress(SystemExit):  # libFuzzer exits when the time is up
        atheris.Fuzz()
    return 1 if found else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=None, help="random mode's seed")
    parser.add_argument("--no-atheris", action="store_true", help="random mutations only")
    args = parser.parse_args()
    if not args.no_atheris:
        try:
            import atheris  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            print("atheris is not installed (pip install '.[fuzz]'): random mutations",
                  file=sys.stderr)
        else:
            return atheris_mode(args.minutes)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    runs, found = random_mode(time.monotonic() + args.minutes * 60, seed)
    print(f"{runs:,} inputs in {args.minutes:g} minute(s) (seed {seed}): {len(found)} crash(es)")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
