"""Reads the records of a W&B offline run file (``run-<id>.wandb``), as ``wandb sync`` would.

The file is a 7-byte header (``:W&B``, a magic number, a version) followed by a LevelDB-style
log: 32 KiB blocks of chunks, each ``crc32 (4) | length (2, little-endian) | type (1) | data``,
type 1 a whole record, 2/3/4 its first/middle/last part; a block's tail shorter than a chunk
header is padding. Each record is a ``wandb_internal_pb2.Record`` protobuf message.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    """The records of a ``.wandb`` file, in order; an unfinished last record is left out."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    found, parts, position = [], b"", HEADER
    while position + HEADER <= len(data):
        left = BLOCK - position % BLOCK
        if left < HEADER:
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        if kind == 0:  # zero padding up to the end of the block
            position += left
            continue
        end = position + HEADER + length
        if end > len(data):
            break
        parts += data[position + HEADER : end]
        position = end
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            found.append(record)
            parts = b""
    return found


def history_rows(path: Path) -> list[dict[str, object]]:
    """The rows ``run.log`` wrote, as ``{key: value}`` (wandb's own ``_step`` etc. included)."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return rows


def config(path: Path) -> dict[str, object]:
    """The run's config: the items of its ``config`` records, later ones winning."""
    items: dict[str, object] = {}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        updates = record.config.update if kind == "config" else ()
        if kind == "run":
            updates = record.run.config.update
        for item in updates:
            items[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return items


def run_ids(path: Path) -> list[str]:
    """The ids in the file's ``run`` records."""
    return [r.run.run_id for r in records(path) if r.WhichOneof("record_type") == "run"]
