"""The chart's rules file passes `promtool check rules`, and its alerts behave as
tests/deploy/ticket-cache-rules.test.yml says (`promtool test rules`)."""

from __future__ import annotations

from pathlib import Path

from tests.deploy.promtool import ROOT, promtool

RULES = ROOT / "deploy/helm/bytemark-ticket-cache/files/ticket-cache-rules.yml"
RULE_TESTS = Path(__file__).with_name("ticket-cache-rules.test.yml")


def test_the_rules_file_passes_promtool_check_rules() -> None:
    done = promtool("check", "rules", RULES)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_say() -> None:
    done = promtool("test", "rules", RULE_TESTS)

    assert done.returncode == 0, done.stdout + done.stderr


def test_an_alert_expected_too_early_fails_the_unit_tests(tmp_path: Path) -> None:
    # The stale alert cannot fire while the oldest cache is under 2 h: promtool must say so.
    wrong = RULE_TESTS.read_text().replace(
        "      - eval_time: 60m  # all stale, but the oldest is still under 2 h\n"
        "        alertname: TicketCachesStale\n"
        "        exp_alerts: []",
        "      - eval_time: 61m\n"
        "        alertname: TicketCachesStale\n"
        "        exp_alerts:\n"
        "          - exp_labels:\n"
        "              severity: warning",
    )
    assert "exp_labels:\n              severity: warning" in wrong.split("eval_time: 95m")[0]
    copy = tmp_path / "wrong.test.yml"
    copy.write_text(wrong.replace(f"../../{RULES.relative_to(ROOT)}", str(RULES)))

    done = promtool("test", "rules", copy)

    assert done.returncode != 0 and "TicketCachesStale" in done.stdout + done.stderr
