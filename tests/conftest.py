"""Shared fixtures: paths to ../shared, temporary lakes."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
REAL = SHARED / "data" / "real"


@pytest.fixture
def real_data() -> Path:
    if not REAL.is_dir():
        pytest.skip("../shared/data/real is not beside the repo")
    return REAL


@pytest.fixture
def lake(tmp_path: Path):
    from spymaster.sources.lake import Lake

    return Lake.at(tmp_path / "lake")
