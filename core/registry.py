"""The registry: campaigns, links, units, provinces and work regions, folded from events."""

from __future__ import annotations

import bisect
import datetime as dt
import zoneinfo
from dataclasses import dataclass, field, replace

from schemas.access import Role
from schemas.campaign import CampaignDefinition, Phase, Province, Questionnaire, Unit, WorkRegion
from schemas.events import (
    Actor,
    AdminAudited,
    CampaignDefined,
    DurationMedianSet,
    LinkIssued,
    LinkRevoked,
    ReviewDecided,
    TokenIssued,
    TokenRevoked,
)

RegistryEvent = (
    CampaignDefined | LinkIssued | LinkRevoked | DurationMedianSet | ReviewDecided
    | TokenIssued | TokenRevoked | AdminAudited
)
# (effective_at, median_seconds, samples), ordered by effective_at
MedianEntry = tuple[dt.datetime, float, int]


@dataclass(frozen=True)
class Attribution:
    link_code: str
    unit: str
    province: str
    work_region: str
    channel: str


@dataclass
class LinkState:
    code: str
    unit: str
    channel: str
    revoked_at: dt.datetime | None = None
    # When the unit issued it itself (link.issued); None for a link from the campaign file.
    issued_at: dt.datetime | None = None


@dataclass
class CampaignState:
    definition: CampaignDefinition
    tz: zoneinfo.ZoneInfo
    links: dict[str, LinkState]
    # Every questionnaire version ever defined stays valid for answers already in flight.
    questionnaires: dict[str, Questionnaire]
    units: dict[str, Unit] = field(default_factory=dict)
    provinces: dict[str, Province] = field(default_factory=dict)
    work_regions: dict[str, WorkRegion] = field(default_factory=dict)
    # Published medians per questionnaire version, and organisers' review decisions in log
    # order. Tuples, replaced on change: readers on other threads never see one change.
    medians: dict[str, tuple[MedianEntry, ...]] = field(default_factory=dict)
    reviews: tuple[ReviewDecided, ...] = ()

    def median_at(self, version: str, at: dt.datetime) -> tuple[float, int] | None:
        """(median seconds, samples) of the latest median in force at `at`, if any."""
        entries = self.medians.get(version, ())
        i = bisect.bisect_right([e[0] for e in entries], at)
        if i == 0:
            return None
        _, median, samples = entries[i - 1]
        return median, samples

    def attribute(self, link_code: str) -> Attribution | None:
        link = self.links.get(link_code)
        if link is None:
            return None
        unit = self.units[link.unit]
        province = self.provinces[unit.province]
        return Attribution(link.code, unit.id, province.id, province.work_region, link.channel)

    def phase_at(self, received_at: dt.datetime) -> Phase | None:
        """The phase whose dates (inclusive, campaign timezone) hold the receive time."""
        day = received_at.astimezone(self.tz).date()
        for phase in self.definition.phases:
            if phase.start <= day <= phase.end:
                return phase
        return None

    def link_revoked_at(self, link_code: str, at: dt.datetime) -> bool:
        link = self.links.get(link_code)
        return link is not None and link.revoked_at is not None and link.revoked_at <= at

    def live_links(self, unit: str) -> list[LinkState]:
        """The unit's links not revoked (what planned_links bounds), in the order they came."""
        return [lk for lk in self.links.values() if lk.unit == unit and lk.revoked_at is None]

    def links_left(self, unit: str) -> int:
        """How many more links the unit may issue now (0 for an unknown unit)."""
        u = self.units.get(unit)
        if u is None:
            return 0
        return max(0, u.planned_links - len(self.live_links(unit)))

    def province_target(self, province_id: str) -> int:
        return self.provinces[province_id].target

    def work_region_target(self, region_id: str) -> int:
        return sum(p.target for p in self.provinces.values() if p.work_region == region_id)


@dataclass(frozen=True)
class TokenRecord:
    """An access token as the registry knows it: never the token, only its sha256."""

    token_id: str
    sha256: str
    role: Role
    campaign: str  # "*" for every campaign
    unit: str
    work_region: str
    label: str
    issued_at: dt.datetime
    expires_at: dt.datetime | None
    issued_by: Actor
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One admin write: what, on which campaign, who (token id and label), when."""

    at: dt.datetime
    action: str
    campaign: str
    by: Actor
    detail: dict[str, str]


class Registry:
    """Folds registry events in log order; the same fold runs in every runtime and in a replay.

    Tokens and the audit trail are replaced whole on change (copy on write): a reader on
    another thread always sees a consistent dict or tuple."""

    def __init__(self) -> None:
        self.campaigns: dict[str, CampaignState] = {}
        self.tokens: dict[str, TokenRecord] = {}  # by token_id
        self.token_by_sha256: dict[str, str] = {}  # sha256 -> token_id
        self.audit: tuple[AuditEntry, ...] = ()

    def get(self, campaign: str) -> CampaignState | None:
        return self.campaigns.get(campaign)

    def reviews(self) -> list[ReviewDecided]:
        """Every campaign's review decisions (a snapshot, safe while another thread folds)."""
        return [d for state in list(self.campaigns.values()) for d in state.reviews]

    def apply(self, event: RegistryEvent) -> None:
        if isinstance(event, TokenIssued | TokenRevoked | AdminAudited):
            self._access(event)
        elif isinstance(event, CampaignDefined):
            self._define(event)
        elif isinstance(event, DurationMedianSet):
            self._median(event)
        elif isinstance(event, ReviewDecided):
            self._review(event)
        elif isinstance(event, LinkIssued):
            self._issue(event)
        else:
            state = self.campaigns.get(event.campaign)
            if state is None or event.link_code not in state.links:
                return
            link = state.links[event.link_code]
            if link.revoked_at is None or event.revoked_at < link.revoked_at:
                link.revoked_at = event.revoked_at

    def _issue(self, event: LinkIssued) -> None:
        """A unit's own link, kept only when the code is new here and the unit is within its
        planned_links: two API processes racing past the plan both publish, the log orders
        them, and the fold (the same everywhere) keeps the first. The API reports the other as
        409 after seeing the fold's result."""
        state = self.campaigns.get(event.campaign)
        if state is None or event.link_code in state.links or event.unit not in state.units:
            return
        if state.links_left(event.unit) <= 0:
            return
        # A new dict, replaced whole: readers on other threads never see one change size.
        links = {**state.links, event.link_code: LinkState(
            event.link_code, event.unit, event.channel, None, event.issued_at)}
        self.campaigns[event.campaign] = replace(state, links=links)

    def _access(self, event: TokenIssued | TokenRevoked | AdminAudited) -> None:
        if isinstance(event, AdminAudited):
            entry = AuditEntry(event.at, event.action, event.campaign, event.by,
                               dict(event.detail))
        elif isinstance(event, TokenIssued):
            if event.token_id in self.tokens:
                return  # the same token read twice: the first stands
            record = TokenRecord(
                event.token_id, event.token_sha256, event.role, event.campaign, event.unit,
                event.work_region, event.label, event.issued_at, event.expires_at, event.by,
            )
            self.tokens = {**self.tokens, record.token_id: record}
            self.token_by_sha256 = {**self.token_by_sha256, record.sha256: record.token_id}
            entry = AuditEntry(event.issued_at, "token.issued", _bound(event.campaign), event.by,
                               {"token_id": event.token_id, "role": event.role.value,
                                "label": event.label, **_scope_detail(record)})
        else:
            old = self.tokens.get(event.token_id)
            if old is None or old.revoked_at is not None:
                return  # unknown, or revoked already: the first revocation stands
            self.tokens = {**self.tokens, old.token_id: replace(old, revoked_at=event.revoked_at)}
            entry = AuditEntry(event.revoked_at, "token.revoked", _bound(old.campaign), event.by,
                               {"token_id": old.token_id, "role": old.role.value,
                                "label": old.label})
        self.audit = (*self.audit, entry)

    def _median(self, event: DurationMedianSet) -> None:
        state = self.campaigns.get(event.campaign)
        if state is None:
            return
        entry = (event.effective_at, event.median_seconds, event.samples)
        entries = state.medians.get(event.questionnaire_version, ())
        if entry in entries:
            return  # the same event read twice
        # Stable for equal effective times: the later event in the log stands.
        at = bisect.bisect_right([e[0] for e in entries], event.effective_at)
        medians = {
            **state.medians, event.questionnaire_version: (*entries[:at], entry, *entries[at:])
        }
        self.campaigns[event.campaign] = replace(state, medians=medians)

    def _review(self, event: ReviewDecided) -> None:
        state = self.campaigns.get(event.campaign)
        if state is None or any(r.decision_id == event.decision_id for r in state.reviews):
            return  # unknown campaign, or the same decision again: nothing changes
        self.campaigns[event.campaign] = replace(state, reviews=(*state.reviews, event))

    def _define(self, event: CampaignDefined) -> None:
        defn = event.definition
        old = self.campaigns.get(defn.campaign)
        links: dict[str, LinkState] = dict(old.links) if old else {}
        for lk in defn.links:
            prior = links.get(lk.code)
            revoked_at = prior.revoked_at if prior else None
            if lk.revoked and revoked_at is None:
                revoked_at = event.defined_at  # a revocation counts from when it was loaded on
            issued_at = prior.issued_at if prior else None
            links[lk.code] = LinkState(lk.code, lk.unit, lk.channel, revoked_at, issued_at)
        questionnaires = dict(old.questionnaires) if old else {}
        questionnaires[defn.questionnaire.version] = defn.questionnaire
        # An update adds and changes; units or provinces a link still points at are kept.
        units = dict(old.units) if old else {}
        units.update({u.id: u for u in defn.units})
        provinces = dict(old.provinces) if old else {}
        provinces.update({p.id: p for p in defn.provinces})
        regions = dict(old.work_regions) if old else {}
        regions.update({r.id: r for r in defn.work_regions})
        self.campaigns[defn.campaign] = CampaignState(
            definition=defn,
            tz=zoneinfo.ZoneInfo(defn.timezone),
            links=links,
            questionnaires=questionnaires,
            units=units,
            provinces=provinces,
            work_regions=regions,
            medians=old.medians if old else {},
            reviews=old.reviews if old else (),
        )


def _bound(campaign: str) -> str:
    return "" if campaign == "*" else campaign


def _scope_detail(record: TokenRecord) -> dict[str, str]:
    if record.unit:
        return {"unit": record.unit}
    if record.work_region:
        return {"work_region": record.work_region}
    return {}
