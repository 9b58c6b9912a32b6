"""Metrics as JSON lines and TensorBoard scalars in the work dir (main process only), and
the TensorBoard event file they (and the prediction images) are written to."""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

_EVENT_FILE_NUMBERS = itertools.count()


class EventFile:
    """A TensorBoard event file, written in the caller's thread.

    TensorBoard's own SummaryWriter writes from a background thread, which on a full disk
    prints a traceback of its own; here a failed write is an OSError where it happens.
    """

    def __init__(self, folder: Path) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.summary.writer.record_writer import RecordWriter

        folder.mkdir(parents=True, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}."
            f"{os.getpid()}.{next(_EVENT_FILE_NUMBERS)}"
        )
        self._event = Event
        self._file = open(folder / name, "ab")  # noqa: SIM115 (closed in close())
        self._records = RecordWriter(self._file)
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def add_scalars(self, step: int, values: dict[str, float]) -> None:
        """Each `{tag: value}` as a scalar at `step`."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        summary = Summary(
            value=[Summary.Value(tag=tag, simple_value=value) for tag, value in values.items()]
        )
        self._write(self._event(wall_time=time.time(), step=step, summary=summary))

    def add_image(self, step: int, tag: str, image: np.ndarray) -> None:
        """image (H,W,3) uint8 RGB, stored as PNG under `tag` at `step`."""
        from PIL import Image
        from tensorboard.compat.proto.summary_pb2 import Summary

        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        picture = Summary.Image(
            height=image.shape[0],
            width=image.shape[1],
            colorspace=3,
            encoded_image_string=buffer.getvalue(),
        )
        summary = Summary(value=[Summary.Value(tag=tag, image=picture)])
        self._write(self._event(wall_time=time.time(), step=step, summary=summary))

    def _write(self, event: Any) -> None:
        self._records.write(event.SerializeToString())
        self._file.flush()

    def close(self) -> None:
        """Close the file (every event is already flushed)."""
        self._file.close()


class MetricLogger:
    """Appends `{"iter": N, ...}` records to `metrics.jsonl` and mirrors them to TensorBoard."""

    def __init__(self, work_dir: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.path = work_dir / "metrics.jsonl"
        self._events = None
        if enabled:
            work_dir.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                self._events = EventFile(work_dir / "tensorboard")

    def log(self, iteration: int, group: str, values: dict[str, Any]) -> None:
        """Record `values` (numbers; NaN written as null) under `group` at `iteration`."""
        if not self.enabled:
            return
        record = {"iter": iteration, "group": group}
        for key, value in values.items():
            record[key] = None if isinstance(value, float) and math.isnan(value) else value
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")
        if self._events is not None:
            scalars = {
                f"{group}/{key}": float(value)
                for key, value in values.items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)
            }
            self._events.add_scalars(iteration, scalars)

    def close(self) -> None:
        """Close TensorBoard's event file (every record is already flushed)."""
        if self._events is not None:
            self._events.close()
            self._events = None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a `metrics.jsonl` file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
