"""Shared fixtures: paths of the project and a way to write specs."""

from pathlib import Path

import pytest
import torch

# Two pytest workers share two cores: one thread each, as ATen does not speed up
# the tiny tensors of these tests with more, and oversubscription slows them a lot.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.mdl"))


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec text into tmp_path and return its path."""

    def write(text: str, name: str = "spec.mdl") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write
