"""An unset `${VAR}` is one config problem among the others: all are reported in one ConfigError, each at
its key path, and no environment value (a secret) reaches the message."""
import pytest

from vdata.haystack.config import parse_haystack_config
from vdata.schemas.config import ConfigError, interpolate_env, parse_config

BASE = {"input": [{"path": "."}], "output": {"dir": "out"}, "stages": [{"probe": {}}, {"shots": {}}]}


def _error(parse, data) -> str:
    with pytest.raises(ConfigError) as e:
        parse(data)
    return str(e.value)


def test_unset_variables_and_a_misspelt_key_are_reported_together(monkeypatch):
    monkeypatch.delenv("VDATA_LEFTOVER_UNSET_A", raising=False)
    monkeypatch.delenv("VDATA_LEFTOVER_UNSET_B", raising=False)
    monkeypatch.setenv("VDATA_LEFTOVER_TOKEN", "s3cr3t-value-never-shown")
    data = {**BASE, "outptu": {"dir": "x"}, "output": {"dir": "${VDATA_LEFTOVER_UNSET_A}/run"},
            "stages": [{"probe": {}}, {"shots": {"detectr": "${VDATA_LEFTOVER_TOKEN}",
                                                 "min_len_s": "${VDATA_LEFTOVER_UNSET_B}"}}]}
    msg = _error(parse_config, data)
    assert "output.dir: environment variable VDATA_LEFTOVER_UNSET_A is not set" in msg
    assert "stages[1].shots.min_len_s: environment variable VDATA_LEFTOVER_UNSET_B is not set" in msg
    assert "outptu: unknown key" in msg
    assert "stages[1].shots.detectr: unknown key" in msg
    # the unset `${...}` left in place is not a number: that says nothing the "not set" line does not
    assert msg.count("stages[1].shots.min_len_s") == 1, msg
    assert "s3cr3t-value-never-shown" not in msg
    with pytest.raises(ConfigError) as e:   # no partial config: preflight would look for `${...}`-named inputs
        parse_config(data)
    assert e.value.partial is None


def test_haystack_config_reports_unset_variables_with_its_other_errors(monkeypatch):
    monkeypatch.delenv("VDATA_LEFTOVER_UNSET_C", raising=False)
    msg = _error(parse_haystack_config, {"output": {"dir": "${VDATA_LEFTOVER_UNSET_C}"}, "haystak": {}})
    assert "output.dir: environment variable VDATA_LEFTOVER_UNSET_C is not set" in msg
    assert "haystak: unknown key" in msg


def test_interpolate_env_alone_names_every_unset_variable(monkeypatch):
    monkeypatch.delenv("VDATA_LEFTOVER_UNSET_D", raising=False)
    monkeypatch.delenv("VDATA_LEFTOVER_UNSET_E", raising=False)
    msg = _error(interpolate_env, {"a": "${VDATA_LEFTOVER_UNSET_D}", "b": ["${VDATA_LEFTOVER_UNSET_E:-ok}",
                                                                       "${VDATA_LEFTOVER_UNSET_E}"]})
    assert "a: environment variable VDATA_LEFTOVER_UNSET_D is not set" in msg
    assert "b[1]: environment variable VDATA_LEFTOVER_UNSET_E is not set" in msg
    assert "b[0]" not in msg
