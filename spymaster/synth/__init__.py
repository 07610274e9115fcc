"""The synthetic market: deterministic Bronze sessions (ES trades + MBP-10, SPY options) with
scenario hooks — the product's embedded demo data and the source of every integration test.

Entry point: :func:`generate` (``spymaster synth`` on the command line); see spymaster/synth/README.md.
:mod:`spymaster.synth.generator` writes the files, :mod:`spymaster.synth.book` is the order-book
model, :mod:`spymaster.synth.options` the option chain, :mod:`spymaster.synth.scenarios` the hooks.

Names are imported lazily, so ``spymaster.synth.dbnfile`` can be used without loading the
numba kernels.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "generate": "spymaster.synth.generator", "GenerationReport": "spymaster.synth.generator",
    "SessionReport": "spymaster.synth.generator", "FileWritten": "spymaster.synth.generator",
    "Scale": "spymaster.synth.generator", "SCALES": "spymaster.synth.generator",
    "Drive": "spymaster.synth.scenarios", "Sweep": "spymaster.synth.scenarios", "Pull": "spymaster.synth.scenarios",
    "Consume": "spymaster.synth.scenarios", "Refill": "spymaster.synth.scenarios",
    "ScenarioEvent": "spymaster.synth.scenarios", "parse_scenario": "spymaster.synth.scenarios",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'spymaster.synth' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)
