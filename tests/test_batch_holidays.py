"""A batch across Thanksgiving 2025 on the synthetic market (holiday and early close from the calendar).

2025-11-27 is an XNYS holiday; 2025-11-28 closes at 13:00 ET and its Globex session opens
2025-11-26 17:00 ET, so it reads three UTC days (11-26, the holiday 11-27, 11-28).
"""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest

from spymaster.batch import run as br
from spymaster.calendar import et_ns, session_for
from spymaster.config import Config
from spymaster.sources.lake import GLBX, Lake

WED, THU, FRI = dt.date(2025, 11, 26), dt.date(2025, 11, 27), dt.date(2025, 11, 28)


@pytest.fixture(scope="module")
def thanksgiving_lake(tmp_path_factory) -> Lake:
    from spymaster.synth import generate

    lake = Lake.at(tmp_path_factory.mktemp("thanksgiving") / "lake")
    generate(lake, [WED.isoformat(), FRI.isoformat()], scale="demo", seed=7)
    return lake


def test_batch_across_thanksgiving_skips_the_holiday_and_replays_the_early_close(thanksgiving_lake):
    lake = thanksgiving_lake
    assert lake.find_bronze(GLBX, "trades", THU) is not None          # the holiday's Globex session is in the lake
    cfg = Config().replace(**{"io.lake": str(lake.root)})
    report = br.run_batch(cfg, start=WED, end=FRI)
    plans = {p.date: p for p in report.plans}
    assert plans[THU].reason == "exchange holiday" and not plans[THU].runs
    assert plans[FRI].session.early_close and "RTH 09:30-13:00 ET (early close)" in plans[FRI].describe()
    assert {r.date: r.status for r in report.results} == {WED.isoformat(): br.DONE, FRI.isoformat(): br.DONE}
    fri = pq.read_table(lake.gold_path(FRI))
    assert fri.num_rows > 0 and set(fri.column("date").to_pylist()) == {FRI.isoformat()}
    s = session_for(FRI)
    assert s.rth_close_ns == et_ns(FRI, 13, 0)
    ts = fri.column("ts_event_ns").to_pylist()
    assert min(ts) > s.start_ns and max(ts) <= s.end_ns
