"""Configuration from the environment: defaults, validation messages, secrecy."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.composition.settings import (
    DEFAULT_FREE_TICKET_PRODUCT_UUIDS,
    SERVE_REQUIRED,
    ConfigError,
    Settings,
    load_settings,
    split_host_port,
)
from adapters.driven.storage.crypto.token_cipher import TokenCipher

FREE_A, FREE_B = DEFAULT_FREE_TICKET_PRODUCT_UUIDS
AES_KEY = base64.b64encode(b"k" * 32).decode()


def problems_of(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    return caught.value.problems


def test_defaults_follow_the_spec() -> None:
    settings = load_settings({})
    assert settings.grpc_listen == "127.0.0.1:50051"
    assert settings.bytemark_customer_api_url is None and settings.bytemark_account_api_url is None
    assert settings.bytemark_timeout_seconds == 10
    assert settings.bytemark_max_attempts == 4
    assert settings.bytemark_rate_limit_rps == 0
    assert settings.mysql_url is None and settings.mongodb_url is None
    assert settings.mongodb_cache_collection == "bytemarkticketscaches"
    assert settings.mongodb_ticket_log_collection == "bytemarkticketslogs"
    assert settings.sqlite_path == "var/ticket-cache.sqlite3"
    assert settings.cache_timeout_seconds == 3600
    assert settings.bulk_concurrency == 64
    assert settings.free_ticket_product_uuids == (FREE_A, FREE_B)
    assert (settings.project_name, settings.project_stage) == ("connectsmart", "production")
    assert settings.token_encryption_key is None and settings.grpc_auth_token is None
    assert not settings.tls_enabled and not settings.slack_enabled
    assert settings.metrics_listen is None
    assert (settings.log_level, settings.log_format) == ("INFO", "json")
    assert settings.grpc_max_message_bytes == 64 * 1024 * 1024
    assert settings.grpc_max_receive_bytes == 1024 * 1024  # requests are small: 10,000 ids ~ 100 KB


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULK_CONCURRENCY", "8")
    assert load_settings().bulk_concurrency == 8


def test_parses_and_normalises_values(tmp_path: Path) -> None:
    cert, key, ca = (tmp_path / name for name in ("cert.pem", "key.pem", "ca.pem"))
    for path in (cert, key, ca):
        path.write_text("x")
    settings = load_settings(
        {
            "GRPC_LISTEN": "[::]:0",
            "BYTEMARK_CUSTOMER_API_URL": "https://customer.example/",
            "BYTEMARK_ACCOUNT_API_URL": "http://127.0.0.1:8080",
            "BYTEMARK_CLIENT_SECRET": "s3cret",
            "BYTEMARK_TIMEOUT_SECONDS": "2.5",
            "BYTEMARK_RATE_LIMIT_RPS": "50",
            "MONGODB_URL": "mongodb+srv://user:pw@cluster.example/tickets",
            "LOG_LEVEL": "debug",
            "LOG_FORMAT": "TEXT",
            "TOKEN_ENCRYPTION_KEY": AES_KEY,
            "GRPC_TLS_CERT_FILE": str(cert),
            "GRPC_TLS_KEY_FILE": str(key),
            "GRPC_TLS_CLIENT_CA_FILE": str(ca),
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_CHANNEL_ID": "C123",
            "METRICS_LISTEN": "0.0.0.0:9100",
        }
    )
    assert settings.bytemark_customer_api_url == "https://customer.example"
    assert settings.bytemark_timeout_seconds == 2.5 and settings.bytemark_rate_limit_rps == 50
    assert (settings.log_level, settings.log_format) == ("DEBUG", "text")
    assert settings.grpc_tls_client_ca_file == ca and settings.tls_enabled
    assert settings.slack_enabled
    assert split_host_port(settings.grpc_listen) == ("::", 0)


def test_free_ticket_uuids_are_a_comma_list() -> None:
    settings = load_settings({"FREE_TICKET_PRODUCT_UUIDS": f" {FREE_A.upper()} ,{FREE_B},{FREE_A},"})
    assert settings.free_ticket_product_uuids == (FREE_A, FREE_B)
    problems = problems_of({"FREE_TICKET_PRODUCT_UUIDS": f"{FREE_A},not-a-uuid"})
    assert problems == [
        f"FREE_TICKET_PRODUCT_UUIDS: 'not-a-uuid' is not a valid UUID, got '{FREE_A},not-a-uuid'"
    ]
    assert problems_of({"FREE_TICKET_PRODUCT_UUIDS": " , "})[0].startswith("FREE_TICKET_PRODUCT_UUIDS:")


def test_empty_values_count_as_unset() -> None:
    settings = load_settings({"BULK_CONCURRENCY": "", "MYSQL_URL": "  ", "SLACK_BOT_TOKEN": ""})
    assert settings.bulk_concurrency == 64 and settings.mysql_url is None and settings.slack_bot_token is None


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("GRPC_LISTEN", "localhost", "must be host:port"),
        ("GRPC_LISTEN", "host:99999", "port between 0 and 65535"),
        ("METRICS_LISTEN", ":9100", "must be host:port"),
        ("BYTEMARK_CUSTOMER_API_URL", "ftp://bytemark", "http:// or https://"),
        ("BYTEMARK_ACCOUNT_API_URL", "not a url", "http:// or https://"),
        ("BYTEMARK_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("BYTEMARK_TIMEOUT_SECONDS", "soon", "greater than 0"),
        ("BYTEMARK_MAX_ATTEMPTS", "11", "between 1 and 10"),
        ("BYTEMARK_RATE_LIMIT_RPS", "-1", "at least 0"),
        ("CACHE_TIMEOUT_SECONDS", "0", "between 1 and 2592000"),
        ("CACHE_TIMEOUT_SECONDS", "2592001", "between 1 and 2592000"),
        ("BULK_CONCURRENCY", "0", "must be between 1 and 512, got '0'"),
        ("BULK_CONCURRENCY", "many", "integer between 1 and 512"),
        ("GRPC_MAX_MESSAGE_BYTES", "1000", "between 1048576"),
        ("GRPC_MAX_RECEIVE_BYTES", "1000", "between 65536"),
        ("LOG_LEVEL", "TRACE", "DEBUG, INFO, WARNING, ERROR"),
        ("LOG_FORMAT", "xml", "json, text"),
        ("GRPC_TLS_CERT_FILE", "/no/such/cert.pem", "does not exist"),
        ("PROJECT_NAME", "   x", None),  # surrounding blanks are stripped: accepted
    ],
)
def test_each_bad_value_is_reported_with_its_variable(variable: str, value: str, reason: str | None) -> None:
    environ = {variable: value}
    if variable == "GRPC_TLS_CERT_FILE":
        environ["GRPC_TLS_KEY_FILE"] = "/no/such/key.pem"
    if reason is None:
        load_settings(environ)
        return
    problems = problems_of(environ)
    [problem] = [p for p in problems if p.startswith(f"{variable}:")]
    assert reason in problem
    assert f"got {value!r}" in problem


def test_every_offending_variable_is_named_at_once() -> None:
    problems = problems_of(
        {
            "BULK_CONCURRENCY": "0",
            "BYTEMARK_MAX_ATTEMPTS": "0",
            "LOG_FORMAT": "xml",
            "GRPC_TLS_CLIENT_CA_FILE": "/no/such/ca.pem",
        }
    )
    named = {problem.split(":", 1)[0] for problem in problems}
    assert named == {"BULK_CONCURRENCY", "BYTEMARK_MAX_ATTEMPTS", "LOG_FORMAT", "GRPC_TLS_CLIENT_CA_FILE"}
    assert len(problems) == 5  # the CA file is both missing and lacks a cert/key pair
    assert "BULK_CONCURRENCY: must be between 1 and 512, got '0'" in str(
        problems_of({"BULK_CONCURRENCY": "0"})[0]
    )


def test_cross_variable_rules(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    assert problems_of({"GRPC_TLS_CERT_FILE": str(cert)}) == [
        "GRPC_TLS_KEY_FILE: required when GRPC_TLS_CERT_FILE is set (set both or neither)"
    ]
    assert problems_of({"SLACK_CHANNEL_ID": "C1"}) == [
        "SLACK_BOT_TOKEN: required when SLACK_CHANNEL_ID is set (set both or neither)"
    ]
    assert problems_of({"MONGODB_URL": "mongodb://db.example:27017"}) == [
        "MONGODB_DATABASE: required when MONGODB_URL names no database"
    ]
    settings = load_settings({"MONGODB_URL": "mongodb://db.example", "MONGODB_DATABASE": "tickets"})
    assert settings.mongodb_database == "tickets"


@pytest.mark.parametrize(
    ("variable", "secret"),
    [
        ("TOKEN_ENCRYPTION_KEY", "aHVudGVyMnh5eg=="),  # valid base64, but a 10-byte key
        ("TOKEN_ENCRYPTION_KEY", "not base64 at all!! hunter2"),
        ("MYSQL_URL", "postgres://app:hunter2@db/tickets"),
        ("MONGODB_URL", "redis://app:hunter2@db/0"),
    ],
)
def test_secret_values_are_never_echoed(variable: str, secret: str) -> None:
    problems = problems_of({variable: secret})
    message = "\n".join(problems)
    assert message.startswith(f"{variable}:")
    assert secret not in message and "hunter2" not in message
    assert "value not shown" in message


def test_repr_hides_secrets_and_database_urls() -> None:
    settings = load_settings(
        {
            "BYTEMARK_CLIENT_SECRET": "hunter2",
            "GRPC_AUTH_TOKEN": "hunter2",
            "MYSQL_URL": "mysql://app:hunter2@db/tickets",
            "SLACK_BOT_TOKEN": "hunter2",
            "SLACK_CHANNEL_ID": "C1",
        }
    )
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert settings.bytemark_client_secret is not None
    assert settings.bytemark_client_secret.get_secret_value() == "hunter2"
    assert settings.mysql_url == "mysql://app:hunter2@db/tickets"


def test_settings_are_immutable() -> None:
    settings = load_settings({})
    field = "bulk_concurrency"  # via setattr: type checkers without the pydantic plugin allow it
    with pytest.raises(ValidationError, match="frozen"):
        setattr(settings, field, 1)


def test_require_names_each_missing_variable() -> None:
    settings = load_settings({"BYTEMARK_CUSTOMER_API_URL": "http://127.0.0.1:1"})
    with pytest.raises(ConfigError) as caught:
        settings.require(*SERVE_REQUIRED)
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "BYTEMARK_ACCOUNT_API_URL",
        "BYTEMARK_CLIENT_ID",
        "BYTEMARK_CLIENT_SECRET",
    ]


def test_direct_construction_keeps_defaults_without_reading_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BULK_CONCURRENCY", "8")
    assert Settings().bulk_concurrency == 64


def test_the_settings_accept_exactly_the_keys_the_token_cipher_can_use() -> None:
    key = b"k" * 32
    for text in (base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode().rstrip("=")):
        settings = load_settings({"TOKEN_ENCRYPTION_KEY": text})
        assert settings.token_encryption_key is not None
        assert TokenCipher.from_base64(settings.token_encryption_key.get_secret_value()).enabled


def test_every_secret_setting_and_database_password_is_handed_to_log_redaction() -> None:
    key = base64.b64encode(b"k" * 32).decode()
    settings = load_settings(
        {
            "BYTEMARK_CLIENT_SECRET": "client-secret-1",
            "SLACK_BOT_TOKEN": "xoxb-slack-1",
            "SLACK_CHANNEL_ID": "C1",
            "GRPC_AUTH_TOKEN": "grpc-token-1",
            "TOKEN_ENCRYPTION_KEY": key,
            "MYSQL_URL": "mysql://app:my%40sql-pw@db:3306/tickets",
            "MONGODB_URL": "mongodb://app:mongo-pw@db/tickets",
        }
    )
    assert sorted(settings.secret_values()) == sorted(
        ["client-secret-1", "xoxb-slack-1", "grpc-token-1", key, "my@sql-pw", "mongo-pw"]
    )
    assert load_settings({}).secret_values() == []


def test_mongodb_client_is_motor_by_default_and_pymongo_by_choice() -> None:
    assert load_settings({}).mongodb_client == "motor"
    assert load_settings({"MONGODB_CLIENT": "PyMongo"}).mongodb_client == "pymongo"
    assert problems_of({"MONGODB_CLIENT": "mongomock"}) == [
        "MONGODB_CLIENT: must be one of motor, pymongo, got 'mongomock'"
    ]


def test_passes4_retention_is_unset_by_default_and_a_positive_number_of_days() -> None:
    assert load_settings({}).passes4_retention_days is None
    assert load_settings({"PASSES4_RETENTION_DAYS": "90"}).passes4_retention_days == 90
    assert problems_of({"PASSES4_RETENTION_DAYS": "0"}) == [
        "PASSES4_RETENTION_DAYS: must be between 1 and 36500, got '0'"
    ]


def test_the_http_port_is_off_unless_http_listen_names_a_host_and_port() -> None:
    assert load_settings({}).http_listen is None
    assert load_settings({"HTTP_LISTEN": "0.0.0.0:8080"}).http_listen == "0.0.0.0:8080"
    assert problems_of({"HTTP_LISTEN": "8080"})[0].startswith("HTTP_LISTEN: must be host:port")
    assert Settings.model_fields["http_listen"].description
