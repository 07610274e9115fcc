"""One typed configuration object holding every SPEC parameter with its default.

Parameters are grouped in sections (``[barrier]``, ``[tape]`` …); names follow ../shared/SPEC.md
verbatim where SPEC names them. Each field carries its unit, a one-line doc and its valid range
in the dataclass metadata: that metadata validates TOML input (unknown key, wrong type, out of
range → :class:`~spymaster.errors.ConfigError` naming ``section.key``) and renders
``replay_configs/default.toml`` (:func:`render_default_toml`; a test keeps the file in sync).

Units: prices on the SPY-equivalent axis are "SPY $"; ES prices are "ES points"; times are
seconds unless the name says ``_ms``; volumes are contracts.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from spymaster.errors import ConfigError

_MISSING = object()


def param(default: Any, unit: str, doc: str, *, min: float | None = None,
          max: float | None = None, choices: tuple[Any, ...] | None = None,
          min_exclusive: bool = False) -> Any:
    """A config field with unit, doc and validation metadata."""
    return field(default=default, metadata={"unit": unit, "doc": doc, "min": min, "max": max,
                                             "choices": choices, "min_exclusive": min_exclusive})


@dataclass(frozen=True)
class SessionConfig:
    premarket_start: str = param("04:00", "ET HH:MM", "start of the pre-market window (PM_HIGH / PM_LOW bars)")
    opening_range_minutes: int = param(15, "minutes", "length of the opening range from 09:30 ET", min=1, max=390)
    first_minutes: int = param(15, "minutes", "is_first_15m covers bars starting in [09:30, 09:30 + this)", min=1, max=390)
    detection_window: str = param("rth", "enum", "bars on which touches are detected: rth = bars starting in RTH; session = every bar of the Globex session",
                                  choices=("rth", "session"))


@dataclass(frozen=True)
class InstrumentConfig:
    roll_days_before_expiry: int = param(8, "calendar days", "roll date = expiration - this; the front contract is used while D < roll date", min=0, max=90)
    es_instrument: str = param("", "raw symbol", "pin the ES contract (e.g. ESZ5); empty = the SPEC roll rule")
    es_spy_ratio: float = param(10.0, "ES points per SPY $", "price axis: px = es_price / es_spy_ratio", min=0.0, min_exclusive=True)
    es_tick_size: float = param(0.25, "ES points", "ES minimum price increment", min=0.0, min_exclusive=True)
    es_multiplier: float = param(50.0, "$ per ES point", "ES contract multiplier (sweep notional)", min=0.0, min_exclusive=True)
    option_root: str = param("SPY", "symbol", "underlying of the option chain (OCC root)")
    option_multiplier: float = param(100.0, "shares per contract", "option contract multiplier", min=0.0, min_exclusive=True)


@dataclass(frozen=True)
class BasisConfig:
    parity_window_s: float = param(120.0, "s", "a strike enters put-call parity if both its call and put traded within this window", min=0.0, min_exclusive=True)
    parity_min_strikes: int = param(2, "strikes", "minimum strikes with a parity estimate for one basis observation", min=1)
    basis_tau_s: float = param(300.0, "s", "EWMA time constant of the ES-SPY basis", min=0.0, min_exclusive=True)


@dataclass(frozen=True)
class LevelsConfig:
    strike_min_volume: int = param(100, "contracts", "STRIKE level once call+put 0DTE volume at the strike reaches this", min=0)
    wall_min_volume: int = param(500, "contracts", "CALL_WALL / PUT_WALL once that side's 0DTE volume reaches this", min=0)
    gamma_flip_band: float = param(0.03, "fraction of spot", "GAMMA_FLIP searched within +/- this fraction of SPY spot", min=0.0, max=1.0, min_exclusive=True)
    gamma_flip_step: float = param(0.05, "SPY $", "grid step of the dealer gamma profile for GAMMA_FLIP", min=0.0, min_exclusive=True)
    round_step: float = param(1.0, "SPY $", "spacing of ROUND levels", min=0.0, min_exclusive=True)
    round_band: float = param(5.0, "SPY $", "ROUND levels within this distance of the previous bar's close", min=0.0)


@dataclass(frozen=True)
class TouchConfig:
    touch_band: float = param(0.30, "SPY $", "a bar touches L if low - band <= L <= high + band", min=0.0)
    touch_rearm: str = param("entry", "enum", "entry = emit only if not touched on the previous bar; every_bar = emit every touched bar",
                             choices=("entry", "every_bar"))
    monitor_band: float = param(1.00, "SPY $", "levels within this distance of the bar close are monitored (scores)", min=0.0)


@dataclass(frozen=True)
class BarrierConfig:
    barrier_zone_ticks: int = param(8, "ES ticks", "zone = L_es +/- this many ticks", min=0, max=1000)
    barrier_window_s: float = param(60.0, "s", "trailing window of book-state pairs", min=0.0, min_exclusive=True)
    baseline_window_s: float = param(300.0, "s", "trailing window of the time-weighted depth baseline", min=0.0, min_exclusive=True)
    barrier_flow_threshold: float = param(100.0, "contracts", "F of the barrier_state rules", min=0.0)
    vacuum_max_replenishment: float = param(0.3, "ratio", "VACUUM needs replenishment ratio below this", min=0.0)
    wall_min_replenishment: float = param(1.5, "ratio", "WALL (flow) needs replenishment ratio above this", min=0.0)
    wall_ratio_wall: float = param(3.0, "ratio", "WALL if wall_ratio >= this", min=0.0)
    wall_ratio_weak: float = param(0.5, "ratio", "WEAK if wall_ratio < this", min=0.0)


@dataclass(frozen=True)
class TapeConfig:
    tape_band: float = param(0.50, "SPY $", "trades with |px - L| <= band count for imbalance and sweeps", min=0.0)
    tape_window_s: float = param(60.0, "s", "trailing window of the tape features", min=0.0, min_exclusive=True)
    velocity_window_s: float = param(10.0, "s", "tape_velocity = trades in this window / its length", min=0.0, min_exclusive=True)
    sweep_max_gap_ms: float = param(100.0, "ms", "consecutive same-side in-band trades at most this far apart form a run", min=0.0)
    sweep_min_notional: float = param(25_000_000.0, "$", "a run qualifies as a sweep at this notional (price_es * size * multiplier)", min=0.0)
    sweep_lookback_s: float = param(240.0, "s", "a run is traced back at most this far before the tape window start", min=0.0)


@dataclass(frozen=True)
class FuelConfig:
    rate: float = param(0.045, "per year", "risk-free rate of Black-Scholes (no dividend)", min=-1.0, max=1.0)
    default_iv: float = param(0.20, "per sqrt(year)", "IV when a contract never had a solvable trade", min=0.0, min_exclusive=True)
    iv_min: float = param(0.01, "per sqrt(year)", "lower bracket of the IV solver", min=0.0, min_exclusive=True)
    iv_max: float = param(5.0, "per sqrt(year)", "upper bracket of the IV solver", min=0.0, min_exclusive=True)
    min_t_seconds: float = param(300.0, "s", "time to expiry is floored at this", min=0.0, min_exclusive=True)
    gamma_threshold: float = param(10_000.0, "shares per SPY $", "AMPLIFY below -threshold, DAMPEN above +threshold", min=0.0)


@dataclass(frozen=True)
class ScoreConfig:
    w_liquidity: float = param(0.45, "weight", "weight of liquidity_score in break_score_raw", min=0.0)
    w_hedge: float = param(0.35, "weight", "weight of hedge_score in break_score_raw", min=0.0)
    w_tape: float = param(0.20, "weight", "weight of tape_score in break_score_raw", min=0.0)
    score_vacuum: float = param(100.0, "score", "liquidity_score of VACUUM", min=0.0, max=100.0)
    score_consumed: float = param(75.0, "score", "liquidity_score of CONSUMED", min=0.0, max=100.0)
    score_weak: float = param(65.0, "score", "liquidity_score of WEAK", min=0.0, max=100.0)
    score_neutral: float = param(50.0, "score", "liquidity_score of NEUTRAL", min=0.0, max=100.0)
    score_absorption: float = param(25.0, "score", "liquidity_score of ABSORPTION", min=0.0, max=100.0)
    score_wall: float = param(0.0, "score", "liquidity_score of WALL", min=0.0, max=100.0)
    hedge_scale: float = param(10_000.0, "shares per SPY $", "hedge_score = 50 - 50 tanh(gamma_exposure / hedge_scale)", min=0.0, min_exclusive=True)
    score_tau_s: float = param(180.0, "s", "EWMA time constant of break_score_smooth", min=0.0, min_exclusive=True)
    break_threshold: float = param(65.0, "score", "signal BREAK if smooth >= this", min=0.0, max=100.0)
    reject_threshold: float = param(35.0, "score", "signal REJECT if smooth <= this", min=0.0, max=100.0)
    contested_high: float = param(75.0, "score", "CONTESTED needs max component >= this", min=0.0, max=100.0)
    contested_low: float = param(25.0, "score", "CONTESTED needs min component <= this", min=0.0, max=100.0)
    confidence_churn_norm: float = param(2000.0, "contracts", "churn that gives full confidence", min=0.0, min_exclusive=True)
    confidence_tape_norm: float = param(2000.0, "contracts", "tape buy+sell volume that gives full confidence", min=0.0, min_exclusive=True)
    confidence_option_norm: float = param(1000.0, "contracts", "0DTE volume near the level that gives full confidence", min=0.0, min_exclusive=True)
    confidence_strike_band: float = param(2.0, "SPY $", "strikes with |K + basis - L| <= this count for confidence", min=0.0)
    confidence_high: float = param(0.7, "fraction", "HIGH confidence at c >= this", min=0.0, max=1.0)
    confidence_medium: float = param(0.4, "fraction", "MEDIUM confidence at c >= this", min=0.0, max=1.0)


@dataclass(frozen=True)
class RunwayConfig:
    runway_min_beyond: float = param(0.05, "SPY $", "the next level must lie at least this far beyond L", min=0.0)
    runway_obstructed_distance: float = param(0.50, "SPY $", "OBSTRUCTED if runway_distance is below this", min=0.0)


@dataclass(frozen=True)
class LabelConfig:
    label_horizon_s: float = param(300.0, "s", "the label path covers ES trades in [t, t + horizon]", min=0.0, min_exclusive=True)
    label_threshold: float = param(0.20, "SPY $", "BREAK / BOUNCE threshold", min=0.0, min_exclusive=True)


@dataclass(frozen=True)
class IOConfig:
    lake: str = param("data/lake", "path", "lake root (Bronze inputs, Gold outputs)")
    chunk_records: int = param(25_000, "records", "records decoded per chunk (bounded memory)", min=1)
    prefetch_batches: int = param(4, "batches", "merged batches a reader thread decodes ahead of the engine (0 = no reader thread)", min=0, max=64)


@dataclass(frozen=True)
class LiveConfig:
    gateway: str = param("", "host", "live gateway host; empty = Databento's production gateway for each dataset")
    port: int = param(13000, "TCP port", "live gateway port", min=1, max=65535)
    lateness_ms: float = param(500.0, "ms", "the two live streams are merged by ts_recv with this bounded lateness", min=0.0)
    flush_seconds: float = param(10.0, "s", "live part files are flushed at least this often", min=0.0, min_exclusive=True)
    flush_rows: int = param(500, "rows", "live part files are flushed when this many rows are pending", min=1)
    heartbeat_interval_s: int = param(30, "s", "heartbeat interval requested from the gateway", min=1)
    reconnect_policy: str = param("reconnect", "enum", "none = fail on disconnect; reconnect = reconnect up to max_reconnects times",
                                  choices=("none", "reconnect"))
    max_reconnects: int = param(5, "attempts", "reconnect attempts before giving up", min=0)
    reconnect_backoff_s: float = param(1.0, "s", "wait before the first reconnect (doubles each attempt)", min=0.0)


@dataclass(frozen=True)
class Config:
    """Every parameter of the SPEC with its default. Immutable; build variants with :meth:`replace`."""

    session: SessionConfig = field(default_factory=SessionConfig)
    instrument: InstrumentConfig = field(default_factory=InstrumentConfig)
    basis: BasisConfig = field(default_factory=BasisConfig)
    levels: LevelsConfig = field(default_factory=LevelsConfig)
    touch: TouchConfig = field(default_factory=TouchConfig)
    barrier: BarrierConfig = field(default_factory=BarrierConfig)
    tape: TapeConfig = field(default_factory=TapeConfig)
    fuel: FuelConfig = field(default_factory=FuelConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    runway: RunwayConfig = field(default_factory=RunwayConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    io: IOConfig = field(default_factory=IOConfig)
    live: LiveConfig = field(default_factory=LiveConfig)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "<config>") -> "Config":
        """Build from a nested mapping (as parsed from TOML); validates every key and value."""
        if not isinstance(data, Mapping):
            raise ConfigError("the configuration must be a table of sections", path=source)
        sections: dict[str, Any] = {}
        known = {f.name: f for f in fields(cls)}
        for name, value in data.items():
            if name not in known:
                raise ConfigError(f"unknown section [{name}] (known: {', '.join(known)})", path=source)
            if not isinstance(value, Mapping):
                raise ConfigError(f"[{name}] must be a table, got {type(value).__name__}", path=source)
            sec_type = known[name].default_factory  # type: ignore[misc]
            sections[name] = _build_section(sec_type, name, value, source)
        return cls(**sections)

    @classmethod
    def load(cls, path: str | Path | None = None, *, overrides: Mapping[str, Any] | None = None) -> "Config":
        """Load a TOML replay config (``None`` = defaults), then apply dotted ``overrides``."""
        data: dict[str, Any] = {}
        source = "<defaults>"
        if path is not None:
            p = Path(path)
            source = str(p)
            try:
                data = tomllib.loads(p.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError("config file not found", path=p) from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"not valid TOML: {exc}", path=p) from None
        if overrides:
            for dotted, value in overrides.items():
                sec, _, key = dotted.partition(".")
                if not key:
                    raise ConfigError(f"override {dotted!r} must be section.key", path=source)
                data.setdefault(sec, {})[key] = value
        return cls.from_mapping(data, source=source)

    def replace(self, **dotted: Any) -> "Config":
        """A copy with some parameters changed: ``cfg.replace(**{"touch.touch_band": 0.25})``."""
        data = self.to_dict()
        for key, value in dotted.items():
            sec, _, name = key.partition(".")
            if sec not in data or not name:
                raise ConfigError(f"unknown parameter {key!r}")
            data[sec][name] = value
        return Config.from_mapping(data, source="<replace>")

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {f.name: dataclasses.asdict(getattr(self, f.name)) for f in fields(self)}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): stored in output metadata, stable across runs."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def _build_section(sec_type: type, name: str, values: Mapping[str, Any], source: str) -> Any:
    known = {f.name: f for f in fields(sec_type)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{name}.{key}"
        if key not in known:
            raise ConfigError(f"unknown key {dotted!r} (known in [{name}]: {', '.join(known)})", path=source)
        kwargs[key] = _check_value(known[key], dotted, value, source)
    return sec_type(**kwargs)


def _check_value(f: dataclasses.Field, dotted: str, value: Any, source: str) -> Any:
    meta = f.metadata
    want = type(f.default)
    if want is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{dotted} must be true or false, got {value!r}", path=source)
    elif want is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{dotted} must be an integer, got {value!r}", path=source)
    elif want is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{dotted} must be a number, got {value!r}", path=source)
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{dotted} must be finite, got {value!r}", path=source)
    elif want is str:
        if not isinstance(value, str):
            raise ConfigError(f"{dotted} must be a string, got {value!r}", path=source)
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and (value < lo or (meta.get("min_exclusive") and value == lo)):
        op = ">" if meta.get("min_exclusive") else ">="
        raise ConfigError(f"{dotted} must be {op} {lo}, got {value!r}", path=source)
    if hi is not None and value > hi:
        raise ConfigError(f"{dotted} must be <= {hi}, got {value!r}", path=source)
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{dotted} must be one of {', '.join(map(str, choices))}, got {value!r}", path=source)
    if dotted == "session.premarket_start":
        _parse_hhmm(value, dotted, source)
    return value


def _parse_hhmm(value: str, dotted: str, source: str) -> tuple[int, int]:
    try:
        hh, mm = value.split(":")
        h, m = int(hh), int(mm)
        if not (0 <= h < 24 and 0 <= m < 60):
            raise ValueError
    except ValueError:
        raise ConfigError(f"{dotted} must be HH:MM, got {value!r}", path=source) from None
    return h, m


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, float):
        return repr(v) if v != int(v) or abs(v) < 1e15 else f"{v:.1f}"
    return str(v)


def render_default_toml() -> str:
    """The text of ``replay_configs/default.toml``: every parameter, its default, unit and doc."""
    lines = [
        "# spymaster replay configuration: every parameter with its default.",
        "# Generated from spymaster/config.py (render_default_toml); a test keeps it in sync.",
        "# Copy this file and change what you need; unknown keys and bad values are refused.",
        "",
    ]
    cfg = Config()
    for sec in fields(cfg):
        lines.append(f"[{sec.name}]")
        section = getattr(cfg, sec.name)
        for f in fields(section):
            meta = f.metadata
            rng = []
            if meta.get("choices"):
                rng.append("one of " + ", ".join(meta["choices"]))
            if meta.get("min") is not None:
                rng.append((">" if meta.get("min_exclusive") else ">=") + f" {meta['min']}")
            if meta.get("max") is not None:
                rng.append(f"<= {meta['max']}")
            extra = f" ({'; '.join(rng)})" if rng else ""
            lines.append(f"# {meta['doc']}. Unit: {meta['unit']}{extra}.")
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
        lines.append("")
    return "\n".join(lines)


def default_config_dir() -> Path:
    """``replay_configs/`` of the source checkout (next to the package)."""
    return Path(__file__).resolve().parent.parent / "replay_configs"
