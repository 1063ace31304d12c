"""A run's headline figures as data: name -> value and unit, written beside its Markdown as JSON so the
next run can show them as its previous run's.

Values are plain floats: the JSON is read back by the next run's report, not used for money.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LATEST = "latest.json"


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str
    # For history figures: the workflow type the figure was found in.
    workflow_type: str | None = None


@dataclass
class Snapshot:
    """One run's figures, and where they came from (a run's name, or the document they were copied from)."""

    run: str
    figures: dict[str, Figure] = field(default_factory=dict)
    transcribed_from: str | None = None

    def to_json(self) -> str:
        document: dict[str, Any] = {"run": self.run}
        if self.transcribed_from is not None:
            document["transcribed_from"] = self.transcribed_from
        document["figures"] = {
            name: {
                "value": figure.value,
                "unit": figure.unit,
                **({"workflow_type": figure.workflow_type} if figure.workflow_type else {}),
            }
            for name, figure in self.figures.items()
        }
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        document = json.loads(text)
        return cls(
            run=str(document["run"]),
            transcribed_from=document.get("transcribed_from"),
            figures={
                name: Figure(float(entry["value"]), str(entry["unit"]), entry.get("workflow_type"))
                for name, entry in document["figures"].items()
            },
        )


def read(path: Path) -> Snapshot | None:
    """The snapshot at `path`; None when there is none yet."""
    try:
        return Snapshot.from_json(path.read_text())
    except FileNotFoundError:
        return None
