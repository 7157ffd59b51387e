"""Shared fixtures: paths of the project and a way to write specs."""

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# CI draws the same examples on every run, so a red CI is one anyone can reproduce;
# elsewhere hypothesis keeps exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

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
