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


DEMO_DATE = "2025-12-17"


@pytest.fixture(scope="session")
def demo_lake(tmp_path_factory):
    """A lake holding the synthetic demo day (generated once per test session)."""
    from spymaster.sources.lake import Lake
    from spymaster.synth import generate

    lk = Lake.at(tmp_path_factory.mktemp("demo") / "lake")
    generate(lk, [DEMO_DATE], scale="demo", seed=7)
    return lk


@pytest.fixture(scope="session")
def demo_config(demo_lake):
    from spymaster.config import Config

    return Config().replace(**{"io.lake": str(demo_lake.root)})


@pytest.fixture(scope="session")
def demo_batches(demo_lake, demo_config):
    """The demo day's merged event stream as one EventBatch (and the session)."""
    import numpy as np

    from spymaster.calendar import session_from_config
    from spymaster.events import EventBatch
    from spymaster.pipeline import Pipeline
    from spymaster.replay.merge import interleave
    from spymaster.sources.session import open_session

    inputs = open_session(demo_lake, DEMO_DATE, demo_config)
    batches = list(Pipeline.batches(inputs))
    trades = np.concatenate([b.trades[b.pos[b.kind == 1]] for b in batches])
    books = np.concatenate([b.books[b.pos[b.kind == 2]] for b in batches])
    options = np.concatenate([b.options[b.pos[b.kind == 3]] for b in batches])
    merged: EventBatch = interleave(trades, books, options)
    return merged, session_from_config(DEMO_DATE, demo_config)
