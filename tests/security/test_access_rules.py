"""The access rules without HTTP: scope arithmetic on filters, the helpers for routes about one
unit or link, the token fold (issue, revoke, first one stands) and the failure limiter."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi import HTTPException

from api.deps import Access
from core.access import (
    CROWD,
    Authenticator,
    Caller,
    Denied,
    FailedAuthLimiter,
    Rule,
    new_token,
    token_sha256,
)
from core.ports import RegionFilter
from core.registry import Registry
from schemas.access import Role
from schemas.campaign import CampaignDefinition
from schemas.events import Actor, CampaignDefined, TokenIssued, TokenRevoked
from tests.helpers import campaign_definition

NOW = dt.datetime(2026, 9, 14, tzinfo=dt.UTC)
BY = Actor(token_id="t", label="test")
SCOPED = Rule(roles=frozenset(Role), scoped=True)


def registry() -> Registry:
    r = Registry()
    d = CampaignDefinition.model_validate(campaign_definition("c"))
    r.apply(CampaignDefined(campaign="c", defined_at=NOW, definition=d))
    return r


def access(role: Role, unit: str = "", region: str = "") -> Access:
    return Access(SCOPED, Caller("tok", "x", role, "c", unit, region), registry().get("c"))


def test_unit_scope_is_anded_and_refuses_what_it_cannot_meet() -> None:
    a = access(Role.unit, unit="gd-cyber")
    assert a.narrow(RegionFilter()).unit == "gd-cyber"
    assert a.narrow(RegionFilter(province="44", link="Gd7kQ2xQ")).unit == "gd-cyber"
    for outside in (RegionFilter(unit="gx-net"), RegionFilter(province="45"),
                    RegionFilter(work_region="east"), RegionFilter(link="Gx1aB2cD"),
                    RegionFilter(link="NoSuch12")):
        with pytest.raises(HTTPException) as refused:
            a.narrow(outside)
        assert refused.value.status_code == 403
    a.require_unit("gd-cyber")
    a.require_link("Gd7kQ2xP")
    with pytest.raises(HTTPException):
        a.require_unit("gx-net")
    with pytest.raises(HTTPException):
        a.require_link("Gx1aB2cD")


def test_coordinator_scope_is_its_region() -> None:
    a = access(Role.coordinator, region="south")
    assert a.narrow(RegionFilter(unit="gx-net")).work_region == "south"
    assert a.units_in_scope() == {"gd-cyber", "gx-net"}
    assert a.sees_province("45") and not a.sees_province("31")
    with pytest.raises(HTTPException):
        a.narrow(RegionFilter(province="31"))
    assert access(Role.analyst).narrow(RegionFilter(unit="sh-uni")) == RegionFilter(unit="sh-uni")
    assert access(Role.analyst).scope == {}


def test_tokens_fold_issue_then_revoke_and_the_first_event_stands() -> None:
    r = registry()
    token = new_token()
    assert token.startswith("sik_") and len(token) >= 4 + 43
    issued = TokenIssued(token_id="tok_1", token_sha256=token_sha256(token), role=Role.unit,
                         campaign="c", unit="gd-cyber", label="unit", issued_at=NOW, by=BY)
    r.apply(issued)
    r.apply(issued.model_copy(update={"label": "again"}))  # read twice: the first stands
    auth = Authenticator(r, "")
    assert auth.caller(token, NOW).scope == {"unit": "gd-cyber"}
    r.apply(TokenRevoked(token_id="tok_1", revoked_at=NOW, by=BY))
    r.apply(TokenRevoked(token_id="tok_1", revoked_at=NOW + dt.timedelta(days=1), by=BY))
    with pytest.raises(Denied) as refused:
        auth.caller(token, NOW)
    assert refused.value.status == 401 and "revoked" in refused.value.detail
    assert r.tokens["tok_1"].revoked_at == NOW and r.tokens["tok_1"].label == "unit"
    assert [e.action for e in r.audit] == ["token.issued", "token.revoked"]
    assert token not in repr(r.audit) and token_sha256(token) not in repr(r.audit)


def test_expired_token_is_refused() -> None:
    r = registry()
    token = new_token()
    r.apply(TokenIssued(token_id="tok_2", token_sha256=token_sha256(token), role=Role.analyst,
                        campaign="c", label="a", issued_at=NOW, expires_at=NOW, by=BY))
    with pytest.raises(Denied):
        Authenticator(r, "").caller(token, NOW)


def test_crowd_rule_keeps_monitor_out_of_private_campaigns() -> None:
    assert Role.monitor not in CROWD.roles and Role.unit in CROWD.roles


def test_failure_limiter_counts_per_client_in_a_sliding_window() -> None:
    limiter = FailedAuthLimiter(limit=3, window_s=60)
    for t in (0.0, 1.0, 2.0):
        assert limiter.retry_after("a", t) == 0
        limiter.failed("a", t)
    assert limiter.retry_after("a", 3.0) == 57
    assert limiter.retry_after("b", 3.0) == 0
    assert limiter.retry_after("a", 60.5) == 0  # the first failure aged out
