"""An iteration's folder and its state file (stages done, their results, seconds spent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..files import write_text_atomic


class Iteration:
    """One iteration's folder and its state file."""

    def __init__(self, root: Path, number: int) -> None:
        self.number = number
        self.dir = root / f"iter_{number:03d}"
        self.state_path = self.dir / "state.json"
        if self.state_path.exists():
            self.state = json.loads(self.state_path.read_text())
        else:
            self.state = {"iteration": number, "done": [], "seconds": {}, "results": {}}

    def done(self, stage: str) -> bool:
        return stage in self.state["done"]

    def finish(self, stage: str, result: dict[str, Any], seconds: float) -> None:
        self.add_seconds(stage, seconds)
        self.state["results"][stage] = result
        self.state["done"].append(stage)
        self.save()

    def add_seconds(self, stage: str, seconds: float) -> None:
        spent = self.state["seconds"]
        spent[stage] = round(spent.get(stage, 0.0) + seconds, 3)

    def save(self) -> None:
        write_text_atomic(self.state_path, json.dumps(self.state, indent=1))

    def result(self, stage: str) -> dict[str, Any]:
        return self.state["results"][stage]

    @property
    def labelled(self) -> Path:
        return self.dir / "labelled.extxyz"

    def member_model(self, k: int) -> Path:
        return self.dir / "train" / f"member_{k}" / "model.pt"
