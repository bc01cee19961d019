"""Benchmark: failovers of the active builder (#10 part 2) on a real throwaway PostgreSQL.

Starts ``--nodes`` ``feedsvc run`` daemons, each with its own seeds, feeds and state folders
(as hosts would have) and one shared store, and writes a steady stream of new seeds (``--rate``
per second) into every node's seeds folder, as a replicated folder would. Then ``--failovers``
times, alternately: ``kill -9`` of the leader (it is started again afterwards, as a host that
reboots) or ``SIGSTOP`` (it is woken up with ``SIGCONT`` once another node leads: it must find
itself fenced out and write nothing).

Prints, for each kind, the takeover time (from the signal until another node's ``/status`` says
it leads) and the catch-up time (until that node's first build as leader has finished), median
and max; then the counts that must be 0: articles lost (written but not in the final feed),
published twice (an entry twice in one feed), ids changed (one article under two ids in any
feed any node wrote), files written by a fenced leader after it woke up; and whether the final
leader's feeds equal, byte for byte, a clean one-machine (SQLite) build of the same seeds.

Figures depend on the machine and its load: printed, never asserted. Uses tests/pg.py's
cluster and tests/harness.py's daemon. Needs PostgreSQL >= 14 and psycopg.

Usage: ``.venv/bin/python bench/failover_bench.py [--failovers 20] [--nodes 3] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import feedparser  # noqa: E402

from tests.harness import Daemon, feedsvc, make_site, seed_name  # noqa: E402
from tests.pg import PgServer, find_postgres  # noqa: E402

SITE = "failover.example.org"
BASE_URL = "https://failover.example.org/"
DEADLINE = 60.0  # a hang guard for one wait


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def wait(check: Any, what: str, timeout: float = DEADLINE, interval: float = 0.01) -> Any:
    start = time.monotonic()
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not within {timeout:g} s: {what}")
        time.sleep(interval)


def seed_body(n: int) -> str:
    return f" date 2024-11 Meldung Nummer {n} im Strom der Seeds.\n\nText der Meldung {n}.\n"


class Writer(threading.Thread):
    """A steady stream of new seeds into every node's seeds folder (write, then rename)."""

    def __init__(self, sites: list[Path], rate: float) -> None:
        super().__init__(daemon=True)
        self.sites = sites
        self.pause = 1.0 / rate
        self.written = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            n = self.written + 1
            for site in self.sites:
                tmp = site / "seeds" / f".{seed_name(n)}.part"
                tmp.write_text(seed_body(n), encoding="utf-8")
                os.replace(tmp, site / "seeds" / seed_name(n))
            self.written = n
            self.stop_event.wait(self.pause)


def status(d: Daemon) -> dict[str, Any] | None:
    if d.proc.poll() is not None:
        return None
    try:
        data: dict[str, Any] = json.loads(d.get("/status")[2])
    except (OSError, ValueError):
        return None
    return data


def leader(nodes: dict[str, Daemon], skip: str | None = None) -> tuple[str, dict[str, Any]] | None:
    for name, d in nodes.items():
        if name == skip:
            continue
        s = status(d)
        if s is not None and s["leading"]:
            return name, s
    return None


def feed_keys(path: Path) -> list[tuple[str, str]]:
    """(key, id) of every entry of an Atom file."""
    if not path.is_file():
        return []
    parsed = feedparser.parse(path.read_bytes())
    return [(e.id.rsplit(":", 1)[-1], e.id) for e in parsed.entries]


def files(root: Path) -> dict[str, bytes]:
    if not root.is_dir():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median_ms": ms(statistics.median(values)),
        "max_ms": ms(max(values)),
    }


def failover(
    nodes: dict[str, Daemon], name: str, before: dict[str, Any], kind: str
) -> tuple[str, float, float, int]:
    """Fail the leader ``name``; (new leader, takeover s, catch-up s, files the old one wrote
    after it woke up). A killed node is started again; a stopped one is woken up."""
    old = nodes[name]
    epoch = before["leader"]["epoch"]

    def taken_over() -> tuple[str, dict[str, Any]] | None:
        found = leader(nodes, skip=name)
        return found if found is not None and found[1]["leader"]["epoch"] > epoch else None

    start = time.monotonic()
    old.proc.send_signal(signal.SIGKILL if kind == "kill9" else signal.SIGSTOP)
    new_name, now = wait(taken_over, "a takeover")
    seconds = time.monotonic() - start
    since = now["leader"]["since"]

    def caught_up() -> bool:
        s = status(nodes[new_name])
        return s is not None and (s["last_success"] or "") > since

    wait(caught_up, "the new leader's catch-up build")
    catching = time.monotonic() - start
    wrote = 0
    if kind == "kill9":
        old.proc.wait()
        old.close()
        nodes[name] = Daemon(old.root, "--log-level", "INFO")
    else:
        frozen = files(old.root / "feeds")
        old.proc.send_signal(signal.SIGCONT)

        def standing_by() -> bool:
            s = status(old)
            return (
                s is not None
                and not s["leading"]
                and s["leader"] is not None
                and s["leader"]["epoch"] >= now["leader"]["epoch"]
                and s["idle"]
            )

        wait(standing_by, "the woken leader standing by")
        after = files(old.root / "feeds")
        changed = sorted(k for k, v in after.items() if frozen.get(k) != v)
        if changed:
            print(f"  {name} wrote after it woke up: {', '.join(changed)}", file=sys.stderr)
        wrote = len(changed)
    return new_name, seconds, catching, wrote


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--failovers", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rate", type=float, default=5.0, help="new seeds per second")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bindir = find_postgres()
    if bindir is None:
        print("PostgreSQL >= 14 is not installed (Debian: apt-get install postgresql)")
        return 2
    root = Path(tempfile.mkdtemp(prefix="feedsvc-failover-"))
    server = PgServer(bindir)
    nodes: dict[str, Daemon] = {}
    writer: Writer | None = None
    out: dict[str, Any] = {"nodes": args.nodes, "failovers": args.failovers, "rate": args.rate}
    try:
        server.start()
        db = server.create_database()
        config: dict[str, object] = {
            "store_url": db.url,
            "site_id": SITE,
            "base_url": BASE_URL,
            "max_items": 10_000,
            "max_feed_bytes": 0,
            "debounce_seconds": 0.2,
        }
        sites = [make_site(root / f"node{i}", **config) for i in range(args.nodes)]
        for site in sites:
            nodes[site.name] = Daemon(site, "--log-level", "INFO")
        wait(lambda: leader(nodes), "a first leader")
        writer = Writer(sites, args.rate)
        writer.start()
        takeover: dict[str, list[float]] = {"kill9": [], "sigstop": []}
        catchup: dict[str, list[float]] = {"kill9": [], "sigstop": []}
        ids: dict[str, set[str]] = {}
        twice = 0
        fenced_writes = 0

        def observe(site: Path) -> None:
            nonlocal twice
            entries = feed_keys(site / "feeds" / "atom.xml")
            twice += len(entries) - len({k for k, _ in entries})
            for key, entry_id in entries:
                ids.setdefault(key, set()).add(entry_id)

        for i in range(args.failovers):
            kind = "kill9" if i % 2 == 0 else "sigstop"
            time.sleep(1.0)  # seeds keep flowing under the current leader
            name, before = wait(lambda: leader(nodes), "a leader")
            observe(nodes[name].root)
            new_name, seconds, caught_up, wrote = failover(nodes, name, before, kind)
            takeover[kind].append(seconds)
            catchup[kind].append(caught_up)
            fenced_writes += wrote
            observe(nodes[name].root)
            print(
                f"failover {i + 1:2d} ({kind:7s}): {name} -> {new_name}, takeover "
                f"{ms(seconds):7.1f} ms, caught up {ms(caught_up):7.1f} ms",
                file=sys.stderr,
            )

        writer.stop_event.set()
        writer.join()
        final_name, _ = wait(lambda: leader(nodes), "a final leader")
        final = nodes[final_name]
        last_key = seed_name(writer.written).split("_", 1)[1].removesuffix(".txt")
        wait(
            lambda: (
                last_key in dict(feed_keys(final.root / "feeds" / "atom.xml"))
                and (s := status(final)) is not None
                and s["idle"]
            ),
            "the final leader has every seed",
        )
        for site in sites:
            observe(site)
        entries = dict(feed_keys(final.root / "feeds" / "atom.xml"))
        written = {
            seed_name(n).split("_", 1)[1].removesuffix(".txt") for n in range(1, writer.written + 1)
        }

        clean = make_site(root / "clean", **{**config, "store_url": None})
        shutil.rmtree(clean / "seeds")
        shutil.copytree(final.root / "seeds", clean / "seeds")
        done = feedsvc(clean, "build", "-q")
        if done.returncode != 0:
            raise RuntimeError(f"clean build failed: {done.stderr}")
        ours, theirs = files(final.root / "feeds"), files(clean / "feeds")
        differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))

        out.update(
            seeds_written=writer.written,
            takeover_kill9=summary(takeover["kill9"]),
            takeover_sigstop=summary(takeover["sigstop"]),
            catchup_kill9=summary(catchup["kill9"]),
            catchup_sigstop=summary(catchup["sigstop"]),
            lost=len(written - entries.keys()),
            published_twice=twice,
            ids_changed=sum(1 for v in ids.values() if len(v) > 1),
            fenced_writes=fenced_writes,
            final_equals_clean_build=not differ,
            differing_files=differ[:10],
        )
    except BaseException:
        for name, d in nodes.items():  # each node's own account, for the failure report
            print(f"--- {name}: {status(d)}", file=sys.stderr)
            print("\n".join(d.lines[-40:]), file=sys.stderr)
        raise
    finally:
        if writer is not None:
            writer.stop_event.set()
            writer.join()
        for d in nodes.values():
            if d.proc.poll() is None:
                d.proc.send_signal(signal.SIGCONT)
            d.close()
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['nodes']} nodes, {out['failovers']} failovers, {out['seeds_written']} seeds "
          f"written at {out['rate']:g}/s")  # fmt: skip
    for kind in ("kill9", "sigstop"):
        t, c = out[f"takeover_{kind}"], out[f"catchup_{kind}"]
        print(
            f"  {kind:8s} takeover median {t.get('median_ms')} ms, max {t.get('max_ms')} ms "
            f"(n={t['n']}); caught up median {c.get('median_ms')} ms, max {c.get('max_ms')} ms"
        )
    print(
        f"  lost {out['lost']}, published twice {out['published_twice']}, ids changed "
        f"{out['ids_changed']}, files written by a fenced leader {out['fenced_writes']}"
    )
    same = out["final_equals_clean_build"]
    print(f"  final feeds equal a clean one-machine build: {'yes' if same else 'NO'}"
          + ("" if same else f" (differ: {', '.join(out['differing_files'])})"))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
