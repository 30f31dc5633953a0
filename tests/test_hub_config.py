"""Token specs (KEY=ORG:USER) and HubConfig's checks."""

from __future__ import annotations

import pytest

from reconciler.hub.config import (
    HubConfig,
    TokenGrant,
    generate_token,
    parse_token_spec,
    parse_token_specs,
)
from reconciler.hub.local import LOCAL_TOKEN, local_app


def test_a_token_spec_names_key_org_and_user() -> None:
    assert parse_token_spec("KEY=org_a:user_b") == ("KEY", TokenGrant("org_a", "user_b"))


def test_specs_may_be_comma_separated_and_later_ones_win() -> None:
    tokens = parse_token_specs(["a=o1:u1, b=o1:u2", "a=o2:u3", ""])
    assert tokens == {"a": TokenGrant("o2", "u3"), "b": TokenGrant("o1", "u2")}


@pytest.mark.parametrize(
    "spec", ["KEY", "=org:user", "KEY=org", "KEY=:user", "KEY=org:", "K Y=o:u", "K=o o:u"]
)
def test_malformed_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_token_spec(spec)


@pytest.mark.parametrize(
    "spec",
    [
        "supersecretvalue",
        "org_a:user_a=supersecretvalue",  # KEY and ORG:USER swapped
        "k=org_a:supersecretvalue!",
    ],
)
def test_error_messages_do_not_repeat_the_secret(spec: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_token_spec(spec)
    assert "secretvalue" not in str(caught.value)


@pytest.mark.parametrize("spec", ["k7Q2", "k7Q#=org1:u", "canaryHUBTOK-9x", "k7Q2=o:u u"])
def test_errors_show_no_character_of_a_token_and_name_it_by_number(spec: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_token_specs(["a=o:u", spec])
    message = str(caught.value)
    assert message.startswith("token #2") and "k7Q" not in message and "cana" not in message


def test_generated_tokens_are_fresh_and_valid_specs() -> None:
    first, second = generate_token(), generate_token()
    assert first != second and len(first) > 20
    assert parse_token_spec(f"{first}=o:u")[0] == first


def test_config_defaults_have_faults_off() -> None:
    config = HubConfig()
    assert config.db_path == ":memory:" and dict(config.tokens) == {}
    assert (config.latency_ms, config.fail_rate, config.lost_response_rate) == (0, 0, 0)
    assert config.seed is None and config.admin is False


def test_local_app_creates_its_directory_and_grants_any_org(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "deep" / "dir" / "hub.sqlite3"
    app = local_app(str(db))
    try:
        assert db.exists()
        grant = app.state.config.tokens[LOCAL_TOKEN]
        assert grant == TokenGrant("org_local", "user_local", any_org=True)
    finally:
        app.state.store.close()
