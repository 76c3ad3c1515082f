"""Reads record batch headers straight from a partition's segment files, to check what
the broker stored (codec, offsets) rather than what a client reports."""
import struct
from pathlib import Path

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def batches(data_dir: Path, topic: str, partition: int = 0):
    """Yields (base_offset, record_count, codec, attributes) for every stored batch."""
    for seg in sorted((data_dir / f"{topic}-{partition}").glob("*.log")):
        raw = seg.read_bytes()
        at = 0
        while at + 61 <= len(raw):
            base, length = struct.unpack_from(">qi", raw, at)
            attrs = struct.unpack_from(">h", raw, at + 21)[0]
            count = struct.unpack_from(">i", raw, at + 57)[0]
            yield base, count, CODECS.get(attrs & 7, "?"), attrs
            at += 12 + length
