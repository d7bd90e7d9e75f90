"""What `shopchat up --rasa-replicas N` plans (shopchat/stack.py, shopchat/rasa_env.py) and
the settings that drive it, without starting anything; tests/scaleout/ runs the replicas
on real Postgres and Redis servers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from bot.settings import Settings
from shopchat.cli import cli
from shopchat.stack import ReplicaManager, plan

SHARED = {"database_url": "postgres://shop:s%40cret@db.internal:5433/shopchat",
          "redis_url": "redis://:hush@cache.internal:6380/2"}


def test_the_default_stack_is_one_rasa_on_sqlite_as_before(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    specs = {spec.name: spec for spec in plan(settings, "t", tmp_path / "model.tar.gz")}
    assert list(specs) == ["rasa", "actions", "gateway"]
    rasa = specs["rasa"]
    endpoints = rasa.argv[rasa.argv.index("--endpoints") + 1]
    assert endpoints == str(settings.project_dir / "bot" / "endpoints.yml")
    assert rasa.env["SHOPCHAT_TRACKER_DB"] == str(settings.tracker_db)
    assert "SHOPCHAT_TRACKER_URL" not in rasa.env and "SQL_POOL_SIZE" not in rasa.env
    assert json.loads(specs["gateway"].env["SHOPCHAT_RASA_URLS"]) == ["http://127.0.0.1:5005"]


def test_replicas_get_consecutive_ports_their_own_action_server_and_shared_storage(
    tmp_path: Path,
) -> None:
    settings = Settings(var_dir=tmp_path / "var", rasa_port=6000, action_port=6100,
                        rasa_replicas=3, rasa_sql_pool_size=3, rasa_sql_max_overflow=1,
                        **SHARED)
    specs = {spec.name: spec for spec in plan(settings, "t", tmp_path / "model.tar.gz")}
    assert list(specs) == ["rasa-1", "actions-1", "rasa-2", "actions-2", "rasa-3", "actions-3",
                           "gateway"]
    for i in range(3):
        rasa, actions = specs[f"rasa-{i + 1}"], specs[f"actions-{i + 1}"]
        assert rasa.argv[rasa.argv.index("--port") + 1] == str(6000 + i)
        assert actions.argv[actions.argv.index("--port") + 1] == str(6100 + i)
        assert rasa.env["SHOPCHAT_ACTION_URL"] == f"http://127.0.0.1:{6100 + i}/webhook"
        assert rasa.argv[rasa.argv.index("--endpoints") + 1].endswith("endpoints-scaleout.yml")
        # SQLAlchemy 1.4 knows only postgresql://; the password stays as written.
        assert rasa.env["SHOPCHAT_TRACKER_URL"] == \
            "postgresql://shop:s%40cret@db.internal:5433/shopchat"
        assert (rasa.env["SHOPCHAT_LOCK_HOST"], rasa.env["SHOPCHAT_LOCK_PORT"],
                rasa.env["SHOPCHAT_LOCK_DB"], rasa.env["SHOPCHAT_LOCK_PASSWORD"]) == \
            ("cache.internal", "6380", "2", "hush")
        assert (rasa.env["SQL_POOL_SIZE"], rasa.env["SQL_MAX_OVERFLOW"]) == ("3", "1")
    gateway = specs["gateway"].env
    assert json.loads(gateway["SHOPCHAT_RASA_URLS"]) == [
        "http://127.0.0.1:6000", "http://127.0.0.1:6001", "http://127.0.0.1:6002"]
    assert json.loads(gateway["SHOPCHAT_ACTION_URLS"]) == [
        "http://127.0.0.1:6100", "http://127.0.0.1:6101", "http://127.0.0.1:6102"]


def test_the_scaleout_endpoints_name_every_variable_the_stack_sets(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", rasa_replicas=2, **SHARED)
    rasa = plan(settings, "t", tmp_path / "model.tar.gz")[0]
    endpoints = Path(rasa.argv[rasa.argv.index("--endpoints") + 1]).read_text()
    for name in ("SHOPCHAT_ACTION_URL", "SHOPCHAT_TRACKER_URL", "SHOPCHAT_LOCK_HOST",
                 "SHOPCHAT_LOCK_PORT", "SHOPCHAT_LOCK_DB", "SHOPCHAT_LOCK_USERNAME",
                 "SHOPCHAT_LOCK_PASSWORD"):
        assert "${" + name + "}" in endpoints and name in rasa.env, name


@pytest.mark.parametrize(("settings", "complaint"), [
    ({"rasa_replicas": 2}, "rasa_replicas > 1 needs database_url"),
    ({"database_url": SHARED["database_url"]}, "together"),
    ({"redis_url": SHARED["redis_url"]}, "together"),
    ({**SHARED, "database_url": "mysql://db/shop"}, "postgresql://"),
    ({**SHARED, "database_url": "postgresql://db.internal"}, "postgresql://"),
    ({**SHARED, "redis_url": "rediss://cache:6380/0"}, "rediss:// is not supported"),
    ({**SHARED, "redis_url": "redis://cache:6380/zero"}, "must be numbers"),
    ({"rasa_urls": ["http://a:1", "http://b:2"], "action_urls": ["http://a:3", "http://b:4",
                                                                "http://c:5"]},
     "action_urls"),
    ({"rasa_urls": ["http://a:1/"]}, "trailing slash"),
])
def test_bad_scaleout_settings_are_refused_with_what_to_write(
    settings: dict[str, object], complaint: str,
) -> None:
    with pytest.raises(ValidationError, match=re.escape(complaint)):
        Settings(**settings)  # type: ignore[arg-type]


def test_one_action_server_for_every_rasa_and_the_urls_the_gateway_uses() -> None:
    settings = Settings(rasa_urls=["http://10.0.0.1:5005", "http://10.0.0.2:5005"],
                        action_urls=["http://actions.internal:5055"])
    assert settings.rasa_replica_urls == ["http://10.0.0.1:5005", "http://10.0.0.2:5005"]
    assert settings.action_replica_urls == ["http://actions.internal:5055"] * 2
    assert settings.rasa_url == "http://10.0.0.1:5005"


def test_up_with_replicas_but_no_shared_storage_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SHOPCHAT_DATABASE_URL", "SHOPCHAT_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["up", "--rasa-replicas", "2"])
    assert result.exit_code == 1
    assert "Bad configuration" in result.output and "SHOPCHAT_DATABASE_URL" in result.output


@pytest.mark.parametrize(("stopped", "stops_all"), [
    (set(), False),
    ({"rasa-2"}, False),
    ({"actions-1", "rasa-1"}, False),
    ({"rasa-1", "actions-2"}, True),  # no replica is whole any more
    ({"rasa-1", "rasa-2"}, True),
    ({"gateway"}, True),
])
def test_with_replicas_the_supervisor_stops_all_only_when_no_replica_is_whole(
    stopped: set[str], stops_all: bool,
) -> None:
    manager = ReplicaManager()
    for name in ("rasa-1", "actions-1", "rasa-2", "actions-2", "gateway"):
        manager.add_process(name, "true")
    for name in stopped:
        manager._processes[name]["returncode"] = -9
    assert manager._any_stopped() is stops_all
