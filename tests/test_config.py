"""The typed config: every SPEC parameter, TOML loading and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from spymaster.config import Config, default_config_dir, render_default_toml
from spymaster.errors import ConfigError


def test_default_toml_lists_every_parameter_and_is_in_sync():
    text = (default_config_dir() / "default.toml").read_text()
    assert text == render_default_toml()
    assert Config.load(default_config_dir() / "default.toml") == Config()


def test_demo_toml_loads():
    Config.load(default_config_dir() / "demo.toml")


def test_spec_defaults():
    c = Config()
    assert c.touch.touch_band == 0.30 and c.touch.touch_rearm == "entry"
    assert c.barrier.barrier_window_s == 60 and c.barrier.baseline_window_s == 300
    assert c.barrier.barrier_flow_threshold == 100 and c.barrier.barrier_zone_ticks == 8
    assert c.tape.tape_band == 0.50 and c.tape.sweep_min_notional == 25_000_000
    assert c.fuel.rate == 0.045 and c.fuel.default_iv == 0.20 and c.fuel.min_t_seconds == 300
    assert c.basis.parity_window_s == 120 and c.basis.basis_tau_s == 300 and c.basis.parity_min_strikes == 2
    assert c.levels.strike_min_volume == 100 and c.levels.wall_min_volume == 500
    assert c.score.score_tau_s == 180 and c.labels.label_horizon_s == 300 and c.labels.label_threshold == 0.20
    assert c.instrument.es_spy_ratio == 10.0 and c.instrument.roll_days_before_expiry == 8


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_unknown_key_is_refused_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"touch\.touch_bandd"):
        Config.load(_write(tmp_path, "[touch]\ntouch_bandd = 0.3\n"))


def test_unknown_section_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown section \[tuoch\]"):
        Config.load(_write(tmp_path, "[tuoch]\ntouch_band = 0.3\n"))


def test_wrong_type_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"labels\.label_horizon_s must be a number"):
        Config.load(_write(tmp_path, '[labels]\nlabel_horizon_s = "300"\n'))
    with pytest.raises(ConfigError, match=r"barrier\.barrier_zone_ticks must be an integer"):
        Config.load(_write(tmp_path, "[barrier]\nbarrier_zone_ticks = 8.5\n"))


def test_out_of_range_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"tape\.tape_window_s must be > 0"):
        Config.load(_write(tmp_path, "[tape]\ntape_window_s = 0\n"))
    with pytest.raises(ConfigError, match=r"touch\.touch_rearm must be one of"):
        Config.load(_write(tmp_path, '[touch]\ntouch_rearm = "sometimes"\n'))


def test_invalid_toml_names_the_file(tmp_path):
    p = _write(tmp_path, "[touch\n")
    with pytest.raises(ConfigError, match=str(p)):
        Config.load(p)


def test_replace_validates():
    c = Config().replace(**{"touch.touch_band": 0.25})
    assert c.touch.touch_band == 0.25
    with pytest.raises(ConfigError):
        Config().replace(**{"touch.touch_band": -1.0})


def test_config_json_is_canonical():
    assert Config().to_json() == Config.load(default_config_dir() / "default.toml").to_json()
