"""Per-sample records written durably as a run goes, so that a crash or Ctrl-C costs nothing.

`results.jsonl` in the run's output directory: a header line with the fingerprint of the run's
inputs, then one line per batch (sample keys with the task's records, whatever they hold, and the
samples' metas when preprocess gave any) or per skipped sample, each appended and fsync'ed before
the next batch starts. A rerun with the same inputs reads it back and infers only the samples it
lacks; a rerun with other inputs refuses to mix them. A torn last line (the process died while writing it) is ignored: its batch is redone.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from modelzoo.errors import UserError
from modelzoo.fileio import atomic_write_bytes

FILE_NAME = "results.jsonl"


class ResultLog:
    def __init__(self, output: Path, inputs: dict[str, Any], fresh: bool):
        self.path = Path(output) / FILE_NAME
        self.records: dict[str, Any] = {}
        self.metas: dict[str, Any] = {}  # key -> the meta its preprocess returned (see modelzoo.metas)
        self.skipped: list[dict[str, str]] = []
        if fresh:
            self.path.unlink(missing_ok=True)
        if self.path.exists():
            self._read(inputs)
        else:
            self._append({"inputs": inputs})

    @property
    def done(self) -> set[str]:
        return set(self.records) | {s["key"] for s in self.skipped}

    def _read(self, inputs: dict[str, Any]) -> None:
        lines = self.path.read_bytes().split(b"\n")
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                if number == len(lines) or (number == len(lines) - 1 and not lines[-1]):
                    break  # torn last line of a killed run
                raise UserError(f"{self.path} line {number} is damaged; pass --fresh to start over") from None
        header = records[0].get("inputs") if records and isinstance(records[0], dict) else None
        if header != inputs:
            changed = sorted(k for k in set(inputs) | set(header or {})
                             if (header or {}).get(k) != inputs.get(k)) or ["format"]
            raise UserError(f"{self.path} holds results of a run with other inputs ({', '.join(changed)} "
                            "changed); pass --fresh to start over or choose another --output")
        for record in records[1:]:
            if "skipped" in record:
                self.skipped.append(record["skipped"])
            else:
                self.records.update(zip(record["keys"], record["records"]))
                self.metas.update(zip(record["keys"], record.get("metas", ())))
        # Drop a torn tail so that new lines start on a line of their own.
        self._rewrite_clean(records)

    def _rewrite_clean(self, records: list[dict]) -> None:
        data = b"".join(json.dumps(r).encode() + b"\n" for r in records)
        if data != self.path.read_bytes():
            atomic_write_bytes(self.path, data)

    def add_batch(self, keys: list[str], records: list[Any], metas: list[Any] | None = None) -> None:
        """One batch's records (and metas, one per key, when any sample has one) made durable."""
        has_metas = metas is not None and any(m is not None for m in metas)
        self._append({"keys": keys, "records": records, **({"metas": metas} if has_metas else {})})
        self.records.update(zip(keys, records))
        if has_metas:
            self.metas.update(zip(keys, metas))

    def add_skipped(self, record: dict[str, str]) -> None:
        self._append({"skipped": record})
        self.skipped.append(record)

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record).encode() + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise UserError(f"cannot write {self.path}: {exc.strerror}; free some disk space and rerun "
                            "the same command to resume") from None
