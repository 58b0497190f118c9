import pytest

from settings import Settings, SettingsError


def test_defaults_use_sqlite_and_local_rabbitmq():
    s = Settings.from_env({})
    assert s.database_url.startswith("sqlite:///")
    assert s.broker_url.startswith("amqp://")
    assert s.default_queue == "runs"


def test_reads_prefixed_values_with_types():
    s = Settings.from_env({"DOCKYARD_WORKER_THREADS": "4", "DOCKYARD_DEFAULT_CPUS": "0.5", "PATH": "/bin"})
    assert s.worker_threads == 4
    assert s.default_cpus == 0.5


def test_unknown_key_fails_naming_it():
    with pytest.raises(SettingsError, match="DOCKYARD_DATABSE_URL: unknown setting"):
        Settings.from_env({"DOCKYARD_DATABSE_URL": "sqlite:///x.db"})


def test_malformed_value_fails_naming_key():
    with pytest.raises(SettingsError, match="DOCKYARD_WORKER_THREADS: expected int, got 'many'"):
        Settings.from_env({"DOCKYARD_WORKER_THREADS": "many"})


def test_nonsense_combination_is_refused():
    with pytest.raises(SettingsError, match="DOCKYARD_DEFAULT_TIMEOUT_SECONDS"):
        Settings.from_env({"DOCKYARD_DEFAULT_TIMEOUT_SECONDS": "100", "DOCKYARD_MAX_TIMEOUT_SECONDS": "10"})


def test_empty_value_is_refused():
    with pytest.raises(SettingsError, match="DOCKYARD_BROKER_URL: must not be empty"):
        Settings.from_env({"DOCKYARD_BROKER_URL": ""})


def test_runs_longer_than_rabbitmq_consumer_timeout_are_refused():
    with pytest.raises(SettingsError, match="consumer_timeout"):
        Settings.from_env({"DOCKYARD_MAX_TIMEOUT_SECONDS": "10000"})
    ok = Settings.from_env({"DOCKYARD_MAX_TIMEOUT_SECONDS": "10000", "DOCKYARD_BROKER_CONSUMER_TIMEOUT_SECONDS": "20000"})
    assert ok.max_timeout_seconds == 10000


def test_log_level_and_tail_are_checked():
    with pytest.raises(SettingsError, match="DOCKYARD_LOG_LEVEL"):
        Settings.from_env({"DOCKYARD_LOG_LEVEL": "LOUD"})
    with pytest.raises(SettingsError, match="DOCKYARD_LOG_TAIL_BYTES"):
        Settings.from_env({"DOCKYARD_LOG_TAIL_BYTES": "0"})


@pytest.mark.parametrize("name", ["DOCKYARD_RETENTION_DAYS", "DOCKYARD_WORKER_METRICS_PORT", "DOCKYARD_SCHEDULER_METRICS_PORT"])
def test_zero_turns_off_and_negative_is_refused(name):
    assert getattr(Settings.from_env({name: "0"}), name.removeprefix("DOCKYARD_").lower()) == 0
    with pytest.raises(SettingsError, match=f"{name}: must be 0 or more"):
        Settings.from_env({name: "-1"})


def test_several_broker_urls_are_read_in_order_and_each_checked():
    settings = Settings.from_env({"DOCKYARD_BROKER_URL": "amqp://a:5672/%2F; amqps://b:5671/%2F;"})
    assert settings.broker_urls() == ["amqp://a:5672/%2F", "amqps://b:5671/%2F"]
    with pytest.raises(SettingsError, match="DOCKYARD_BROKER_URL: 'rabbit2:5672' is not an amqp:// or amqps:// URL"):
        Settings.from_env({"DOCKYARD_BROKER_URL": "amqp://a:5672/%2F;rabbit2:5672"})
