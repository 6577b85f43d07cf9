"""What signing costs per version, next to a plain upload and load measured in the same run.

    python bench/signing_bench.py [--repeat 40] [--files 3]

Target: <= 5 ms per version to sign (both signatures, document written) and to check (the trust
policy on load), the one-off imports excluded. Those imports (``model_signing`` to sign,
``cryptography`` to check) are measured separately, each in a fresh interpreter.
Needs the ``signing`` extra.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def import_ms(statement: str, repeat: int = 5) -> float:
    """Median wall time of ``python -c statement`` minus that of ``python -c pass``."""

    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start

    base = statistics.median(run("pass") for _ in range(repeat))
    return (statistics.median(run(statement) for _ in range(repeat)) - base) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--files", type=int, default=3, help="files per version")
    args = parser.parse_args()

    sign_import = import_ms("import modelstore_core.signing as s, model_signing.manifest, model_signing._signing.sign_ec_key")
    check_import = import_ms(
        "from cryptography.hazmat.primitives.asymmetric import ec; from cryptography.hazmat.primitives import serialization"
    )

    from modelstore_core import ModelStore
    from modelstore_core.protocol.read import read_record
    from modelstore_core.signing import load_private_key, new_private_key_pem, public_pem, sign_record, write_signature

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = root / "model"
        src.mkdir()
        paths = []
        for i in range(args.files):
            (src / f"f{i}.bin").write_bytes(os.urandom(64 * 1024))
            paths.append(src / f"f{i}.bin")
        pem = new_private_key_pem()
        (root / "k.pem").write_bytes(pem)
        private = load_private_key(pem)
        (root / "k.pub").write_text(public_pem(private.public_key()))

        plain = ModelStore(root / "plain", cache_dir=root / "cache-plain")
        signed = ModelStore(root / "signed", cache_dir=root / "cache-signed", signer=root / "k.pem")
        trusting = ModelStore(root / "signed", cache_dir=root / "cache-trusting", trusted_keys=[root / "k.pub"])
        untrusting = ModelStore(root / "signed", cache_dir=root / "cache-untrusting", trusted_keys=[])
        # warm up: imports (model_signing, cryptography), plugin discovery, the write probe
        plain.upload("d", files=paths)
        signed.upload("d", files=paths)
        trusting.load("d")
        untrusting.load("d")

        def timed(fn) -> list[float]:
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            return times

        up_plain = timed(lambda: plain.upload("d", files=paths))
        up_signed = timed(lambda: signed.upload("d", files=paths))
        record = read_record(signed.storage, "d", 1)
        sign_only = timed(lambda: sign_record(record, private))
        sign_and_write = timed(lambda: write_signature(signed.storage, record, private))
        policy = trusting.trust_policy
        check_only = timed(lambda: policy.check(trusting.storage, record))
        load_plain = timed(lambda: untrusting.load("d", version=1))  # cached files: the per-version overhead shows
        load_checked = timed(lambda: trusting.load("d", version=1))

    print(f"signing benchmark: {args.files} files of 64 KiB per version, median of {args.repeat}")
    print(f"  one-off import to sign (model_signing):          {sign_import:8.1f} ms")
    print(f"  one-off import to check (cryptography):          {check_import:8.1f} ms")
    print(f"  sign a version (both signatures)                 {median_ms(sign_only):8.2f} ms")
    print(f"  sign + write the document (local store)          {median_ms(sign_and_write):8.2f} ms   target <= 5 ms")
    print(f"  check a version against the policy               {median_ms(check_only):8.2f} ms   target <= 5 ms")
    print(f"  upload, unsigned / signed                        {median_ms(up_plain):8.2f} / {median_ms(up_signed):.2f} ms")
    print(f"  load (cached), no policy / policy                {median_ms(load_plain):8.2f} / {median_ms(load_checked):.2f} ms")


if __name__ == "__main__":
    main()
