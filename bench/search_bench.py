"""``find`` on moto's S3 server on 127.0.0.1: requests and time, each next to reading every record
(what ``ls`` did before the summary) in the same run.

    pip install -e . -e 'plugins/modelstore-s3[test]'
    python bench/search_bench.py [--versions 1000] [--domains 100] [--per-domain 10] [--repeat 5]

- one domain of ``--versions`` versions: a filtered, sorted query (``metrics.auc>0.9``,
  ``tags.team=risk``, sorted by ``-metrics.auc``), and the same with ``state=production``;
  target <= 3 requests and <= 0.2 s at 1,000 versions;
- ``--domains`` domains of ``--per-domain`` versions each, the same query across all of them;
  target <= 1 + 1 per domain requests;
- the first query after the versions were committed without their summary entries (a store
  written before the summary existed, or every upload's summary update lost): it reads every
  record once and writes the summary;
- what the summary adds to an upload;
- under a trust policy (``--no-policy`` skips it): the same queries when every version and its
  summary entry are signed (target: the requests of the query without a policy), when the entries
  are not (a summary rebuilt by a copy: each version's record and signature are read instead),
  and ``latest`` and a state resolved with and without a policy.

Versions are committed the way the core commits them (claim, then record with create-if-absent),
concurrently, each with its own metrics and tags; only the first of each domain is a real upload.
Requests are every attempt, counted through botocore's before-send.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import _common
from s3_bench import TESTS, prepare, server

sys.path.insert(0, str(TESTS))
from s3_requests import RequestLog  # noqa: E402 - beside the S3 plugin's tests

WHERE = ["metrics.auc>0.9", "tags.team=risk"]
SORT = "-metrics.auc"


def commit_versions(store, domain: str, n: int, rng: random.Random, directory: Path) -> None:
    """Versions 1..n of ``domain``: version 1 uploaded, the others committed copies with their own metrics."""
    from modelstore_core.protocol import commit

    model = directory / "model.bin"
    if not model.exists():
        model.write_bytes(os.urandom(10_000))
    first = store.upload(domain, files=[model], tags={"team": "risk"}, metrics={"auc": 0.5}, params={"lr": 0.1}).metadata
    base = {k: v for k, v in first.items() if k not in ("version", "created")}

    def one(version: int) -> None:
        draft = {
            **base,
            "tags": {"team": rng.choice(["risk", "ops", "growth"])},
            "metrics": {"auc": round(rng.uniform(0.5, 1.0), 4), "rmse": round(rng.uniform(1, 5), 3)},
            "params": {"lr": rng.choice([0.01, 0.03, 0.1, 0.3])},
        }
        if version == 2:  # the one in production: a hit of every query
            draft.update(tags={"team": "risk"}, metrics={"auc": 0.95})
        record, _, _ = commit.create_record(store.storage, domain, draft, first=version, events=False)
        assert record.version == version

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(2, n + 1)))
    commit.advance_latest(store.storage, domain, n, evented=set(range(2, n + 1)))  # no events: taken as from before the feed
    store.set_state(domain, 2, "production")


def baseline(store, domain: str | None, state: bool = False) -> list[tuple[str, int]]:
    """The same query by reading every record: a listing per domain, then every record, concurrently."""
    domains = [domain] if domain else store.list_domains()
    versions = [v for d in domains for v in store.list_versions(d)]
    states = {d: store.states(d) for d in domains} if state else {}
    records = store.fetch_metadata(versions)
    hits = [
        v for v in records
        if v.metrics.get("auc", 0) > 0.9 and v.tags.get("team") == "risk"
        and (not state or states[v.domain].get("production") == v.version)
    ]  # fmt: skip
    hits.sort(key=lambda v: -v.metrics["auc"])
    return [(v.domain, v.version) for v in hits]


def measure(make_store, fn, repeat: int) -> tuple[int, str, float, object]:
    """Requests (and their kinds) of one call of ``fn(store)`` on a fresh store, then the median time of ``repeat`` more."""
    store = make_store()
    log = RequestLog(store.storage)
    with log.measure() as calls:
        result = fn(store)
    seconds = _common.median_time(lambda: fn(store), repeat)
    store.close()
    return len(calls), _common.tally(op for op, _, _ in calls), seconds, result


def cpu_time(store, fn, repeat: int) -> float:
    """The median CPU seconds of this process (moto's server is another) of ``repeat`` calls of ``fn(store)``."""
    fn(store)  # warm: imports, the trust policy's keys
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn(store)
        times.append(time.process_time() - start)
    store.close()
    return sorted(times)[len(times) // 2]


def sign_everything(store, domain: str, private_key) -> None:
    """What a signer's uploads would have left: each version's signature, its summary entry signed,
    the signed head on the newest, and production signed where it points."""
    from modelstore_core.protocol import commit, keys
    from modelstore_core.protocol.records import dumps
    from modelstore_core.protocol.summary import SummaryEntry, segment_document
    from modelstore_core.signing import Signer

    signer = Signer(private_key)
    records = [v.record for v in store.fetch_metadata(store.list_versions(domain))]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda r: signer.sign_version(store.storage, r), records))
    segments: dict[int, dict] = {}
    for r in records:
        entry = SummaryEntry.of(r, len(dumps(r.document)))
        segments.setdefault(keys.summary_first(r.version), {})[r.version] = entry.with_signature(signer.sign_entry(domain, entry))
    for first, entries in segments.items():
        store.storage.put(keys.summary_key(domain, first), io.BytesIO(segment_document(domain, first, entries)))
    newest = max(records, key=lambda r: r.version)
    commit.advance_latest(store.storage, domain, newest.version, signer=signer, record=newest)
    commit.set_state(store.storage, domain, store.states(domain)["production"], "production", signer=signer)


def policy_rows(work: Path, opener, plain_url: str, args, rng: random.Random) -> list[tuple]:
    """The queries, latest and a state under a trust policy, next to the same without one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from modelstore_core import ModelStore
    from modelstore_core.protocol import keys
    from modelstore_core.protocol.summary import parse_segment, segment_document

    private = ec.generate_private_key(ec.SECP256R1())
    public = work / "trusted.pub.pem"
    public.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    url = f"s3://{_common.BUCKET}/signed"
    seed = ModelStore(url, cache_dir=work / "cache")
    commit_versions(seed, "churn", args.versions, rng, work)
    sign_everything(seed, "churn", private)

    def trusting():
        return ModelStore(url, cache_dir=work / f"cache-{rng.random()}", trusted_keys=[public])

    def find(state=False):
        where = [*WHERE, "state=production"] if state else WHERE
        return lambda s: [(v.domain, v.version) for v in s.find("churn", where, SORT)]

    rows = []
    for label, fn in (
        ("find", find()),
        ("find + state", find(True)),
        ("latest", lambda s: s.info("churn").version),
        ("state", lambda s: s.info("churn", state="production").version),
    ):
        base_n, base_kinds, base_seconds, expected = measure(opener(url), fn, args.repeat)
        n, kinds, seconds, result = measure(trusting, fn, args.repeat)
        assert result == expected, (label, result, expected)
        cpu, base_cpu = cpu_time(trusting(), fn, args.repeat), cpu_time(opener(url)(), fn, args.repeat)
        note = f"no policy: {base_n} req, {base_seconds:.3f} s; CPU {cpu:.3f} s vs {base_cpu:.3f} s"
        rows.append((f"policy, entries signed: {label}", n, kinds, seconds, note, None))
    reader = trusting()
    key = keys.summary_key("churn", 1)
    entries = parse_segment(seed.storage.read(key)[0], key, "churn", 1)
    start = time.process_time()
    assert all(reader.trust_policy.entry_holds("churn", e) for e in entries.values())
    rows.append((f"policy: {len(entries)} entry signatures checked (CPU)", 0, "", time.process_time() - start, "", None))
    # The entries without their signatures (a summary rebuilt by a copy): records and signatures are read.
    for first in range(1, args.versions + 1, keys.SUMMARY_SPAN):
        key = keys.summary_key("churn", first)
        entries = parse_segment(seed.storage.read(key)[0], key, "churn", first)
        unsigned = {n: replace(e, signatures=()) for n, e in entries.items()}
        seed.storage.put(key, io.BytesIO(segment_document("churn", first, unsigned)))
    n, kinds, seconds, result = measure(trusting, find(), max(1, args.repeat // 5))
    assert result == find()(opener(url)()), result
    rows.append(("policy, entries unsigned: find", n, kinds, seconds, "", None))
    seed.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--domains", type=int, default=100)
    parser.add_argument("--per-domain", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-policy", dest="policy", action="store_false", help="skip the trust-policy measurements")
    args = parser.parse_args()
    rng = random.Random(13)

    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        work = Path(tmp)
        with server(work) as running:
            prepare(running.endpoint)
            from modelstore_core import ModelStore

            def opener(url: str):
                return lambda: ModelStore(url, cache_dir=work / "cache")

            one_url, many_url = f"s3://{_common.BUCKET}/one", f"s3://{_common.BUCKET}/many"
            seed = ModelStore(one_url, cache_dir=work / "cache")
            commit_versions(seed, "churn", args.versions, rng, work)
            seed.close()
            seed = ModelStore(many_url, cache_dir=work / "cache")
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: commit_versions(seed, f"d{i:03d}", args.per_domain, rng, work), range(args.domains)))
            seed.close()

            def find(domain, state=False):
                where = [*WHERE, "state=production"] if state else WHERE
                return lambda s: [(v.domain, v.version) for v in s.find(domain, where, SORT)]

            rows = []
            # The first query of each store finds the summary lagging and rebuilds it: measured once.
            for label, url, domain in (
                ("one domain, first query (rebuilds)", one_url, "churn"),
                ("all domains, first query (rebuilds)", many_url, None),
            ):
                store = opener(url)()
                log = RequestLog(store.storage)
                start = time.perf_counter()
                with log.measure() as calls:
                    find(domain)(store)
                rows.append((label, len(calls), _common.tally(op for op, _, _ in calls), time.perf_counter() - start, "", None))
                store.close()
            from modelstore_core.protocol import read

            listing = lambda s: read.list_versions(s.storage, "churn")  # noqa: E731 - what every query of the domain pays
            n, kinds, seconds, _ = measure(opener(one_url), listing, args.repeat)
            rows.append((f"1 domain of {args.versions}: its listing alone", n, kinds, seconds, "", None))
            cases = [
                (f"1 domain of {args.versions}: find", one_url, find("churn"), lambda s: baseline(s, "churn"), "<= 3, <= 0.2 s"),
                (
                    f"1 domain of {args.versions}: find + state",
                    one_url,
                    find("churn", True),
                    lambda s: baseline(s, "churn", True),
                    "<= 3, <= 0.2 s",
                ),
                (
                    f"{args.domains} domains of {args.per_domain}: find",
                    many_url,
                    find(None),
                    lambda s: baseline(s, None),
                    f"<= {1 + args.domains}",
                ),
                (f"{args.domains} domains: find + state", many_url, find(None, True), lambda s: baseline(s, None, True), ""),
            ]
            for label, url, fn, base, target in cases:
                n, kinds, seconds, result = measure(opener(url), fn, args.repeat)
                bn, bkinds, bseconds, expected = measure(opener(url), base, max(1, args.repeat // 5))
                assert result == expected, (label, result[:5], expected[:5])
                rows.append((label, n, kinds, seconds, target, (bn, bseconds, len(result))))

            if args.policy:
                rows += policy_rows(work, opener, one_url, args, rng)

            store = opener(one_url)()
            model = work / "new.bin"
            model.write_bytes(os.urandom(10_000))
            log = RequestLog(store.storage)
            with log.measure() as calls:
                store.upload("churn", files=[model], metrics={"auc": 0.99})
            summary_calls = [c for c in calls if "/summary/" in c[2]]
            store.close()

    print(f"\nfind on moto's S3 server (127.0.0.1), median of {args.repeat}; baseline: list, then read every record")
    print(f"{'query':<42}{'requests':>9}{'seconds':>9}   {'baseline req':>12}{'seconds':>9}{'hits':>6}   {'target':<16}calls")
    for label, n, kinds, seconds, target, base in rows:
        b = f"{base[0]:>12}{base[1]:>9.3f}{base[2]:>6}" if base else f"{'':>12}{'':>9}{'':>6}"
        print(f"{label:<42}{n:>9}{seconds:>9.3f}   {b}   {target:<16}{kinds}")
    kinds = _common.tally(op for op, _, _ in summary_calls)
    print(f"\nan upload: {len(calls)} requests, {len(summary_calls)} of them for the summary ({kinds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
