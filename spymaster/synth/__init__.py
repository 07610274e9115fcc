"""The synthetic market: deterministic Bronze sessions (ES trades + MBP-10, SPY options) with
scenario hooks — the product's embedded demo data and the source of every integration test.

Entry point: :func:`generate` (``spymaster synth`` on the command line). See
:mod:`spymaster.synth.generate` for the files written, :mod:`spymaster.synth.book` for the order
book model, :mod:`spymaster.synth.options` for the option chain and :mod:`spymaster.synth.scenarios`
for the hooks.
"""

from __future__ import annotations

from spymaster.synth.generate import SCALES, FileWritten, GenerationReport, Scale, SessionReport, generate
from spymaster.synth.scenarios import Consume, Drive, Pull, Refill, ScenarioEvent, Sweep, parse_scenario

__all__ = ["generate", "GenerationReport", "SessionReport", "FileWritten", "Scale", "SCALES", "Drive", "Sweep",
           "Pull", "Consume", "Refill", "ScenarioEvent", "parse_scenario"]
