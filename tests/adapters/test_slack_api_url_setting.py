"""SLACK_API_URL: where the Slack client posts (Slack itself unless a stand-in is configured)."""

from __future__ import annotations

import pytest

from adapters.composition.settings import ConfigError, load_settings


def test_slack_api_url_defaults_to_slack() -> None:
    assert load_settings({}).slack_api_url == "https://slack.com/api/"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8099/api", "http://127.0.0.1:8099/api/"])
def test_slack_api_url_takes_an_http_url_and_ends_it_with_a_slash(url: str) -> None:
    assert load_settings({"SLACK_API_URL": url}).slack_api_url == "http://127.0.0.1:8099/api/"


@pytest.mark.parametrize("url", ["ftp://slack.example/api/", "not a url", "http:///api"])
def test_a_slack_api_url_that_is_not_an_http_url_stops_start_up_naming_the_variable(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"SLACK_API_URL": url})

    assert raised.value.problems[0].startswith("SLACK_API_URL:")
