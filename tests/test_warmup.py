"""The kernel warm-up replays a synthetic RTH slice through the whole engine (bar-close features included)."""

from __future__ import annotations

from spymaster.replay.warmup import warm_session


def test_warm_session_reaches_touch_features():
    assert warm_session() > 0
