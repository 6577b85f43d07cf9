"""Layers: one deterministic tar per file (what a container runtime mounts), written and read as streams.

A file's layer is a function of its path and bytes alone: its parent directories (mode 0755),
then the file (mode 0644), owner 0:0, time 0, PAX format (extended headers only where a name
needs them), two zero blocks at the end and no padding past them. So an unchanged file gives an
unchanged layer digest, and a registry stores it once across versions.

Reading takes a tar stream front to back, with no seek: regular files are written out as they
come, directories are skipped, and anything else (links, devices, sparse files) is refused. Names
are never used as paths here: each file lands under a number in the scratch directory, and the
core checks the names.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from modelstore_core.plugin_api import IntegrityError, ModelStoreError

from .registry import BLOCK

BLOCKSIZE = tarfile.BLOCKSIZE
#: Files in one layer of an artifact another tool made, at most.
MAX_MEMBERS = 10_000
#: A PAX or long-name header larger than this is refused (a name is a few hundred bytes).
MAX_HEADER = 1 << 20


# --- writing -----------------------------------------------------------------------------------------


def _info(name: str, *, directory: bool, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def tar_header(path: str, size: int) -> bytes:
    """What precedes the file's bytes in its layer: its parent directories' entries and its own header."""
    parts = PurePosixPath(path).parts
    headers = [_info("/".join(parts[:i]) + "/", directory=True) for i in range(1, len(parts))]
    headers.append(_info(path, size=size, directory=False))
    return b"".join(h.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") for h in headers)


def tar_trailer(size: int) -> bytes:
    """What follows the file's bytes: padding to a block, and the two zero blocks that end an archive."""
    return bytes(-size % BLOCKSIZE) + bytes(2 * BLOCKSIZE)


@dataclass(frozen=True)
class FileLayer:
    """The layer of one file: its header and trailer around the file's bytes."""

    path: str
    size: int
    header: bytes

    @classmethod
    def of(cls, path: str, size: int) -> FileLayer:
        return cls(path, size, tar_header(path, size))

    @property
    def layer_size(self) -> int:
        return len(self.header) + self.size + len(tar_trailer(self.size))

    def open(self, file: BinaryIO) -> BinaryIO:
        """The layer's bytes as a stream over ``file`` (which it closes)."""
        return _Concat([io.BytesIO(self.header), file, io.BytesIO(tar_trailer(self.size))])

    def memo_key(self, sha256: str) -> str:
        """What the layer digest is a function of: the header (path and size) and the file's sha256."""
        return hashlib.sha256(self.header + bytes.fromhex(sha256)).hexdigest()


def bytes_layer(path: str, data: bytes) -> bytes:
    """A small file's whole layer (the version record's)."""
    return tar_header(path, len(data)) + data + tar_trailer(len(data))


class _Concat(io.RawIOBase):
    def __init__(self, streams: list[BinaryIO]):
        self._streams = streams

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        while self._streams:
            n = self._streams[0].readinto(view) if hasattr(self._streams[0], "readinto") else _read_into(self._streams[0], view)
            if n:
                return n
            self._streams.pop(0).close()
        return 0

    def close(self) -> None:
        for stream in self._streams:
            stream.close()
        self._streams = []
        super().close()


def _read_into(stream: BinaryIO, view: memoryview) -> int:
    data = stream.read(len(view))
    view[: len(data)] = data
    return len(data)


# --- media types ------------------------------------------------------------------------------------

_CONFIG_NAMES = ("config", "tokenizer", "vocab", "merges", "special_tokens", "preprocessor", "generation", "hparams", "chat_template")


def layer_kind(path: str, extra: bool) -> str:
    """The ModelPack kind of a file: ``weight``, ``weight.config``, ``doc`` or ``code``.

    A model file is a weight unless its name says it configures one (``config.json``,
    ``tokenizer.json``, a shard index...); extras are documentation unless they are code.
    """
    name = PurePosixPath(path).name.lower()
    if name.endswith((".py", ".sh", ".ipynb")):
        return "code"
    if name.startswith(("readme", "license", "licence", "notice")) or name.endswith((".md", ".rst")):
        return "doc"
    if extra:
        return "doc"
    if name.endswith((".json", ".yaml", ".yml", ".txt", ".jinja")) and (name.startswith(_CONFIG_NAMES) or name.endswith(".index.json")):
        return "weight.config"
    return "weight"


# --- reading -------------------------------------------------------------------------------------------


class VerifiedBlob:
    """A blob read front to back, hashed as it is read: :meth:`finish` raises :class:`IntegrityError`
    unless exactly ``size`` bytes came and they hash to ``digest``."""

    def __init__(self, raw: BinaryIO, digest: str, size: int, what: str, advance: Callable[[int], None] | None = None):
        self._raw, self.digest, self.size, self.what = raw, digest, size, what
        self._advance = advance
        self._hash = hashlib.sha256()
        self.position = 0

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")[: max(0, self.size - self.position)]
        done = 0
        while done < len(view):
            data = self._raw.read(len(view) - done)
            if not data:
                break
            view[done : done + len(data)] = data
            done += len(data)
        self._hash.update(view[:done])
        self.position += done
        if self._advance is not None and done:
            self._advance(done)
        return done

    def read(self, n: int) -> bytes:
        buffer = bytearray(min(n, max(0, self.size - self.position)))
        return bytes(buffer[: self.readinto(buffer)])

    def finish(self) -> None:
        """Read what is left (past what a reader needed) and check it all."""
        scratch = bytearray(BLOCK)
        while self.readinto(scratch):
            pass
        if self.position != self.size or self._raw.read(1):
            raise IntegrityError(self.what, self.digest, "", f"the registry sent another size than the manifest's {self.size} bytes")
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self.digest:
            raise IntegrityError(
                self.what, self.digest, actual, f"its bytes hash to {actual[:19]}…, not the manifest's {self.digest[:19]}…"
            )


class Gunzip:
    """A gzip stream, decompressed as it is read (``+gzip`` layers of other tools)."""

    def __init__(self, raw: VerifiedBlob):
        self._raw = raw
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""

    def read(self, n: int) -> bytes:
        while len(self._pending) < n and not self._inflate.eof:
            chunk = self._raw.read(BLOCK)
            if not chunk:
                break
            self._pending += self._inflate.decompress(chunk, BLOCK * 4)
            while self._inflate.unconsumed_tail and len(self._pending) < n:
                self._pending += self._inflate.decompress(self._inflate.unconsumed_tail, BLOCK * 4)
        data, self._pending = self._pending[:n], self._pending[n:]
        return data


@dataclass(frozen=True)
class Member:
    """A regular file read out of a tar layer: its name, where it was written, size and sha256."""

    name: str
    path: Path
    size: int
    sha256: str


def _exact(stream, n: int, what: str) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise ModelStoreError(f"{what}: the tar stream ends in the middle of an entry; refused")
        data += chunk
    return data


def copy_out(stream, size: int, target: Path) -> str:
    """Write the next ``size`` bytes of ``stream`` to ``target``; their sha256."""
    digest = hashlib.sha256()
    left = size
    with open(target, "wb") as out:
        while left:
            chunk = stream.read(min(left, BLOCK))
            if not chunk:
                raise ModelStoreError(f"{target.name}: the stream ends {left} bytes early; refused")
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def read_tar(stream, directory: Path, prefix: str, what: str) -> Iterator[Member]:
    """The regular files of a tar stream, each written to ``directory/<prefix><n>`` as it comes.

    Directories are skipped; links, devices, FIFOs and sparse files are refused
    (:class:`ModelStoreError`), and so are more than :data:`MAX_MEMBERS` entries.
    """
    pax: dict[str, str] = {}
    long_name: str | None = None
    count = 0
    while True:
        block = _exact(stream, BLOCKSIZE, what)
        if block == bytes(BLOCKSIZE):
            return  # the end of the archive (what follows is padding, hashed by the caller)
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.TarError as exc:
            raise ModelStoreError(f"{what}: not a tar layer ({exc}); refused") from None
        count += 1
        if count > MAX_MEMBERS:
            raise ModelStoreError(f"{what}: more than {MAX_MEMBERS} entries in one layer; refused")
        padded = info.size + (-info.size % BLOCKSIZE)
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME):
            if info.size > MAX_HEADER:
                raise ModelStoreError(f"{what}: an extended header of {info.size} bytes; refused")
            data = _exact(stream, padded, what)[: info.size]
            if info.type == tarfile.GNUTYPE_LONGNAME:
                long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            elif info.type == tarfile.XHDTYPE:
                pax = _pax_records(data, what)
            continue
        name = pax.get("path", long_name if long_name is not None else info.name)
        size = int(pax["size"]) if "size" in pax else info.size
        pax, long_name = {}, None
        if info.type == tarfile.DIRTYPE:
            _exact(stream, size + (-size % BLOCKSIZE), what) if size else None
            continue
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
            kind = {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link"}.get(info.type, f"an entry of type {info.type!r}")
            raise ModelStoreError(f"{what}: {name[:100]!r} is {kind}; only regular files are pulled")
        target = directory / f"{prefix}{count}"
        sha256 = copy_out(stream, size, target)
        _exact(stream, -size % BLOCKSIZE, what)
        name = name[2:] if name.startswith("./") else name
        yield Member(name, target, size, sha256)


def _pax_records(data: bytes, what: str) -> dict[str, str]:
    """``"<length> <key>=<value>\\n"`` records (POSIX.1-2001)."""
    records, position = {}, 0
    while position < len(data):
        space = data.find(b" ", position)
        try:
            length = int(data[position:space])
        except ValueError:
            raise ModelStoreError(f"{what}: a malformed PAX header; refused") from None
        if length <= 0 or position + length > len(data):
            raise ModelStoreError(f"{what}: a malformed PAX header; refused")
        key, _, value = data[space + 1 : position + length - 1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position += length
    if "size" in records and not records["size"].isdigit():
        raise ModelStoreError(f"{what}: a PAX size that is not a number; refused")
    return records
