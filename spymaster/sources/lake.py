"""The data-lake layout (SPEC §12): where Bronze inputs and Gold outputs live.

Bronze files are named exactly as Databento's daily batch downloads name them, one file per UTC
day and schema; ``.dbn`` (uncompressed) is accepted wherever ``.dbn.zst`` is::

    {root}/bronze/glbx-mdp3/{schema}/glbx-mdp3-YYYYMMDD.{schema}.dbn.zst
    {root}/bronze/opra-pillar/{schema}/opra-pillar-YYYYMMDD.{schema}.dbn.zst
    {root}/bronze/options/spy/date=YYYY-MM-DD/*.parquet
    {root}/gold/research/signals_{date}.parquet
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

GLBX = "glbx-mdp3"
OPRA = "opra-pillar"
DATASET_NAMES = {GLBX: "GLBX.MDP3", OPRA: "OPRA.PILLAR"}
ES_SCHEMAS = ("definition", "trades", "mbp-10")
OPRA_SCHEMAS = ("definition", "trades")

_DAILY = re.compile(r"^(?P<ds>[a-z0-9-]+)-(?P<ymd>\d{8})\.(?P<schema>[a-z0-9-]+)\.dbn(\.zst)?$")


@dataclass(frozen=True)
class Lake:
    """A lake root and the paths inside it."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> "Lake":
        return cls(Path(root))

    # ------------------------------------------------------------------ bronze
    def bronze_dir(self, dataset: str, schema: str) -> Path:
        return self.root / "bronze" / dataset / schema

    def bronze_path(self, dataset: str, schema: str, day: dt.date, *, compressed: bool = True) -> Path:
        """The canonical path of a daily file (``.dbn.zst`` unless ``compressed=False``)."""
        name = f"{dataset}-{day:%Y%m%d}.{schema}.dbn" + (".zst" if compressed else "")
        return self.bronze_dir(dataset, schema) / name

    def find_bronze(self, dataset: str, schema: str, day: dt.date) -> Path | None:
        """The existing daily file (``.dbn.zst`` preferred over ``.dbn``), or None."""
        for compressed in (True, False):
            p = self.bronze_path(dataset, schema, day, compressed=compressed)
            if p.exists():
                return p
        return None

    def bronze_days(self, dataset: str, schema: str) -> list[dt.date]:
        """UTC days for which a daily file of ``dataset``/``schema`` exists."""
        d = self.bronze_dir(dataset, schema)
        if not d.is_dir():
            return []
        days = set()
        for p in d.iterdir():
            m = _DAILY.match(p.name)
            if m and m["ds"] == dataset and m["schema"] == schema:
                days.add(dt.datetime.strptime(m["ymd"], "%Y%m%d").date())
        return sorted(days)

    def options_parquet_dir(self, day: dt.date, root: str = "spy") -> Path:
        return self.root / "bronze" / "options" / root / f"date={day.isoformat()}"

    # ------------------------------------------------------------------ gold
    @property
    def gold_dir(self) -> Path:
        return self.root / "gold" / "research"

    def gold_path(self, day: dt.date | str) -> Path:
        iso = day if isinstance(day, str) else day.isoformat()
        return self.gold_dir / f"signals_{iso}.parquet"

    @property
    def multi_day_path(self) -> Path:
        return self.gold_dir / "signals_multi_day.parquet"

    def live_parts_dir(self, day: dt.date | str) -> Path:
        iso = day if isinstance(day, str) else day.isoformat()
        return self.root / "gold" / "live" / f"date={iso}"
