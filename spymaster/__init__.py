"""spymaster: a streaming event-replay simulator for ES / SPY 0DTE level-test training data.

Public API (imported lazily so ``import spymaster`` stays light)::

    from spymaster import Config, Pipeline
    table = Pipeline(Config()).run(date="2025-12-17")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Config", "Pipeline", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Config":
        from spymaster.config import Config

        return Config
    if name == "Pipeline":
        from spymaster.pipeline import Pipeline

        return Pipeline
    raise AttributeError(name)
