"""Synthetic answer-sheet traffic for `survey-ingest demo` and the benchmarks.

`make_sheet` / `generate_sheet` produce realistic answer-sheet bodies (CONTRACT §2) for a campaign
definition, with a controlled share of flawed ones, each flaw aimed at one reason code (CONTRACT
§5; the flaws are simulation/flaws.py). simulation/traffic.py's `run_generator` posts them.

Everything is drawn from one `random.Random`: the same seed and the same definition give the same
sheets in the same order (only the timestamps follow the clock given as `now`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import random
import statistics
import uuid
import weakref
import zoneinfo
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final

from schemas.campaign import (
    AttentionQuestion,
    CampaignDefinition,
    Link,
    MultiQuestion,
    Question,
    ScaleQuestion,
    SingleQuestion,
    TextQuestion,
)
from simulation.flaws import (
    DEFAULT_FLAW_WEIGHTS,
    FLAW_KINDS,
    FLAW_REASONS,
    NEEDS_HISTORY,
    FlawKind,
)
from simulation.texts import OPINIONS, PROBLEMS, STALE_OPTIONS

# The flaw vocabulary is re-exported: tests and benchmarks know it from here.
__all__ = [
    "AGE_GROUPS", "DEFAULT_FLAW_WEIGHTS", "FLAW_KINDS", "FLAW_REASONS", "FlawKind",
    "GeneratedSheet", "SheetFactory", "generate_sheet", "make_sheet",
]

log = logging.getLogger(__name__)

AGE_GROUPS: Final[tuple[str, ...]] = (
    "under-18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"
)
_AGE_WEIGHTS: Final[tuple[float, ...]] = (0.08, 0.14, 0.22, 0.22, 0.16, 0.11, 0.07)

# Share of respondents answering from another province than their link's (migrants, travellers).
_OTHER_PROVINCE_SHARE: Final = 0.12
_OPINION_SHARE: Final = 0.10
_NO_DEVICE_ID_SHARE: Final = 0.03
_SKIP_OPTIONAL = {"scale": 0.12, "single": 0.15, "multi": 0.30, "text": 0.88, "attention": 0.0}
# Pasting a phone number into an opinion happens; it exercises the privacy screening.
_PHONE_IN_OPINION_SHARE: Final = 0.03
# Resends (page retries) refer to one of the most recent sheets, reused devices to any kept one.
_RESEND_WINDOW: Final = 64

_NONE_PREFIXES: Final = ("都没有", "以上都没有", "以上均无", "None", "none")
_STANDARD_NORMAL: Final = statistics.NormalDist()
_CODE_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"


@dataclass(frozen=True)
class GeneratedSheet:
    """One answer-sheet body and the flaw it was made with (None: a valid sheet)."""

    body: dict[str, Any]
    flaw: FlawKind | None


def _stable_unit(*parts: str) -> float:
    """A number in (0, 1) fixed by the parts: popularity that does not depend on the seed."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64


def _stable_lognormal(sigma: float, *parts: str) -> float:
    return math.exp(sigma * _STANDARD_NORMAL.inv_cdf(_stable_unit(*parts)))


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _copy_json(value: Any) -> Any:
    """A copy of a JSON-shaped value (dicts, lists, scalars); much cheaper than deepcopy."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _copy_body(body: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy_json(v) for k, v in body.items()}


def _fits_scale(q: ScaleQuestion, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and q.min <= value <= q.max


class SheetFactory:
    """Makes the sheets of one stream for one campaign definition.

    It remembers the recent valid sheets of its stream, which resends and reused devices refer
    back to. Link popularity is fixed by the definition (not by the seed), so units progress
    unevenly and the same ones lead every time; a unit's pull scales with its planned_samples.
    """

    def __init__(
        self,
        definition: CampaignDefinition,
        *,
        valid_share: float = 0.9,
        flaw_weights: Mapping[FlawKind, float] | None = None,
        memory: int = 4096,
    ) -> None:
        if not 0.0 <= valid_share <= 1.0:
            raise ValueError(f"valid_share must be between 0 and 1, not {valid_share}")
        self.definition = definition
        self.valid_share = valid_share
        self.tz = zoneinfo.ZoneInfo(definition.timezone)
        questionnaire = definition.questionnaire
        self.questions: tuple[Question, ...] = tuple(questionnaire.questions)
        self.scale_questions = tuple(q for q in self.questions if isinstance(q, ScaleQuestion))
        self.required = tuple(q for q in self.questions if q.required)
        self.min_seconds = questionnaire.min_seconds
        # Under this a sheet with every question answered is too fast per item as well.
        self.per_item_floor = math.ceil(questionnaire.min_seconds_per_item * len(self.questions))
        self.straight_min = questionnaire.straight_lining_min_items
        self.link_codes = frozenset(lk.code for lk in definition.links)

        units = {u.id: u for u in definition.units}
        provinces = {p.id: p for p in definition.provinces}
        usable = [lk for lk in definition.links if not lk.revoked and lk.unit in units]
        if not usable:
            raise ValueError(f"campaign {definition.campaign!r} has no link that is not revoked")
        self.links: tuple[Link, ...] = tuple(usable)
        self.revoked: tuple[Link, ...] = tuple(lk for lk in definition.links if lk.revoked)
        per_unit = Counter(lk.unit for lk in usable)
        weights = []
        for lk in usable:
            unit = units[lk.unit]
            pull = max(unit.planned_samples, 1) * _stable_lognormal(
                0.8, definition.campaign, unit.id
            )
            channel = {"wechat": 3.0, "poster": 0.6}.get(lk.channel, 1.0)
            share = channel * _stable_lognormal(0.4, definition.campaign, lk.code)
            weights.append(pull * share / per_unit[lk.unit])
        self._link_cum = list(accumulate(weights))
        self._link_province = {lk.code: units[lk.unit].province for lk in usable}
        self.province_ids = tuple(provinces)
        self._province_cum = list(
            accumulate(max(p.internet_users, 1) for p in provinces.values())
        )
        self._option_weights = {
            q.id: [_stable_lognormal(0.7, definition.campaign, q.id, o) for o in q.options]
            for q in self.questions
            if isinstance(q, SingleQuestion | MultiQuestion)
        }

        chosen = dict(DEFAULT_FLAW_WEIGHTS if flaw_weights is None else flaw_weights)
        unknown = set(chosen) - set(FLAW_KINDS)
        if unknown:
            raise ValueError(f"unknown flaw kinds: {sorted(unknown)}")
        if any(w < 0 for w in chosen.values()):
            raise ValueError("flaw weights must not be negative")
        self.flaw_weights = {k: w for k, w in chosen.items() if w > 0 and self._possible(k)}
        if valid_share < 1.0 and not self.flaw_weights:
            raise ValueError("no flaw kind is possible with this campaign and these weights")

        self._memory = memory
        self._recent: list[dict[str, Any]] = []  # ring buffer of valid bodies
        self._recent_next = 0
        self._devices: list[str] = []  # ring buffer of device ids of valid bodies
        self._devices_next = 0

    def _possible(self, kind: FlawKind) -> bool:
        if kind == "too_fast":
            return self.min_seconds >= 2
        if kind == "missing_required":
            return bool(self.required)
        if kind == "invalid_answer":
            return any(not isinstance(q, TextQuestion) for q in self.questions)
        if kind == "straight_lining":
            return len(self.scale_questions) >= self.straight_min and bool(self._common_points())
        if kind == "revoked_link":
            return bool(self.revoked)
        return True

    # -- one sheet ---------------------------------------------------------------------------

    def make(self, rng: random.Random, now: dt.datetime) -> GeneratedSheet:
        """The next sheet of this stream, as submitted just before `now`."""
        flaw = self._draw_flaw(rng)
        if flaw == "identical_resend":
            return GeneratedSheet(_copy_body(self._pick_recent(rng)), flaw)
        if flaw == "conflicting_resend":
            return GeneratedSheet(self._conflicting(rng, self._pick_recent(rng)), flaw)
        body = self._fresh(rng, now, flaw)
        if flaw is None:
            self._remember(body)
        return GeneratedSheet(body, flaw)

    def _draw_flaw(self, rng: random.Random) -> FlawKind | None:
        if not self.flaw_weights or rng.random() < self.valid_share:
            return None
        kinds = list(self.flaw_weights)
        if not self._recent:  # nothing to resend yet: draw among the kinds that need no history
            kinds = [k for k in kinds if k not in NEEDS_HISTORY]
            if not kinds:
                return None
        if not self._devices and "reused_device" in kinds:
            kinds.remove("reused_device")
        return rng.choices(kinds, [self.flaw_weights[k] for k in kinds])[0]

    def _fresh(self, rng: random.Random, now: dt.datetime, flaw: FlawKind | None) -> dict[str, Any]:
        link = self.links[bisect_right(self._link_cum, rng.random() * self._link_cum[-1])]
        link_code = link.code
        if flaw == "unknown_link":
            link_code = self._unknown_code(rng)
        elif flaw == "revoked_link":
            link_code = rng.choice(self.revoked).code

        province = self._link_province[link.code]
        if rng.random() < _OTHER_PROVINCE_SHARE and self.province_ids:
            x = rng.random() * self._province_cum[-1]
            province = self.province_ids[bisect_right(self._province_cum, x)]
        city_no = 1 if rng.random() < 0.35 else rng.randint(2, 16)

        submitted = now.astimezone(self.tz).replace(microsecond=0)
        submitted -= dt.timedelta(seconds=rng.randint(0, 2))  # page-to-collector latency
        started = submitted - dt.timedelta(seconds=self._duration(rng, flaw == "too_fast"))

        answers = self._answers(rng)
        if flaw == "missing_required":
            self._drop_required(rng, answers)
        elif flaw == "invalid_answer":
            self._corrupt(rng, answers)
        elif flaw == "straight_lining":
            self._straight_line(rng, answers)

        body: dict[str, Any] = {
            "submission_id": _uuid4(rng),
            "campaign": self.definition.campaign,
            "link_code": link_code,
            "questionnaire_version": self.definition.questionnaire.version,
            "started_at": started.isoformat(),
            "submitted_at": submitted.isoformat(),
            "respondent": {
                "province": province,
                "city": f"{province}{city_no:02d}",
                "age_group": rng.choices(AGE_GROUPS, _AGE_WEIGHTS)[0],
            },
        }
        device_id = _uuid4(rng)
        if flaw == "reused_device":
            device_id = rng.choice(self._devices)
        if flaw == "reused_device" or rng.random() >= _NO_DEVICE_ID_SHARE:
            body["device_id"] = device_id
        body["answers"] = answers
        if rng.random() < _OPINION_SHARE:
            opinion = rng.choice(OPINIONS)
            if rng.random() < _PHONE_IN_OPINION_SHARE:
                opinion += f"如需回访请联系我：1{rng.choice('3589')}{rng.randrange(10**9):09d}。"
            body["opinion"] = opinion
        return body

    def _duration(self, rng: random.Random, too_fast: bool) -> int:
        floor = math.ceil(self.min_seconds)
        if too_fast:
            # Only too_fast: above the per-item floor where there is room for it.
            low = max(1, floor // 6)
            if self.per_item_floor + 1 < floor:
                low = max(low, self.per_item_floor + 1)
            return rng.randint(low, floor - 1)
        if rng.random() < 0.03:  # left the page open for a while
            seconds = rng.uniform(900, 3600)
        else:  # median about 5.5 minutes, most between 2 and 15
            seconds = rng.lognormvariate(math.log(330), 0.5)
        return max(floor + 3, self.per_item_floor + 3, round(seconds))

    def _answers(self, rng: random.Random) -> dict[str, Any]:
        # A respondent's general satisfaction colours every scale item; items scatter around it.
        mood = min(1.0, max(0.0, rng.gauss(0.72, 0.17)))
        answers: dict[str, Any] = {}
        for q in self.questions:
            if not q.required and rng.random() < _SKIP_OPTIONAL[q.type]:
                continue
            if isinstance(q, ScaleQuestion):
                centre = q.min + mood * (q.max - q.min)
                answers[q.id] = min(q.max, max(q.min, round(rng.gauss(centre, 0.75))))
            elif isinstance(q, SingleQuestion):
                answers[q.id] = rng.choices(q.options, self._option_weights[q.id])[0]
            elif isinstance(q, MultiQuestion):
                answers[q.id] = self._choose_many(rng, q)
            elif isinstance(q, AttentionQuestion):
                answers[q.id] = q.expected  # an honest respondent reads the instruction
            else:
                text = rng.choice(PROBLEMS)
                answers[q.id] = text[: q.max_length]
        self._vary(rng, answers)
        return answers

    def _choose_many(self, rng: random.Random, q: MultiQuestion) -> list[str]:
        cap = min(q.max_choices or len(q.options), len(q.options))
        k = min(cap, rng.choices((1, 2, 3, 4), (0.35, 0.35, 0.22, 0.08))[0])
        pool = list(q.options)
        weights = list(self._option_weights[q.id])
        picked: list[str] = []
        for _ in range(k):
            i = rng.choices(range(len(pool)), weights)[0]
            picked.append(pool.pop(i))
            weights.pop(i)
        none_of_them = [o for o in picked if _is_none_option(o)]
        if none_of_them and len(picked) > 1:
            picked = [o for o in picked if not _is_none_option(o)]  # "none" stands alone
        return [o for o in q.options if o in picked]  # in the order the page lists them

    def _vary(self, rng: random.Random, answers: dict[str, Any], skip: str = "") -> None:
        """Keep an honest sheet from straight-lining by chance (judged on the valid scale items,
        `skip` aside): a respondent with one mood can still answer every item alike."""
        items = [
            q for q in self.scale_questions
            if q.id != skip and q.max > q.min and _fits_scale(q, answers.get(q.id))
        ]
        values = {answers[q.id] for q in items}
        if len(items) < self.straight_min or len(values) > 1:
            return
        q = rng.choice(items)
        value = answers[q.id]
        step_down = value == q.max or (value > q.min and rng.random() < 0.5)
        answers[q.id] = value - 1 if step_down else value + 1

    def _drop_required(self, rng: random.Random, answers: dict[str, Any]) -> None:
        q = rng.choice(self.required)
        if rng.random() < 0.7:
            answers.pop(q.id, None)
        else:  # some pages send the key with a blank value
            blank: Any = {"multi": [], "scale": None}.get(q.type, "")
            answers[q.id] = blank
        self._vary(rng, answers, skip=q.id)

    def _corrupt(self, rng: random.Random, answers: dict[str, Any]) -> None:
        q = rng.choice([q for q in self.questions if not isinstance(q, TextQuestion)])
        if isinstance(q, ScaleQuestion):
            answers[q.id] = q.max + rng.randint(1, 5) if rng.random() < 0.7 else q.min - 1
        elif isinstance(q, SingleQuestion):
            answers[q.id] = _stale_option(rng, q.options)
        elif isinstance(q, MultiQuestion):
            if q.max_choices is not None and len(q.options) > q.max_choices and rng.random() < 0.6:
                answers[q.id] = rng.sample(q.options, q.max_choices + 1)  # too many ticked
            else:
                answers[q.id] = [*self._choose_many(rng, q), _stale_option(rng, q.options)]
        self._vary(rng, answers, skip=q.id)

    def _common_points(self) -> range:
        """The points every scale item offers (the only ones a whole sheet can be lined on)."""
        if not self.scale_questions:
            return range(0)
        low = max(q.min for q in self.scale_questions)
        high = min(q.max for q in self.scale_questions)
        return range(low, high + 1)

    def _straight_line(self, rng: random.Random, answers: dict[str, Any]) -> None:
        # The same point on every item: mostly the top one, where a hurried thumb lands.
        points = self._common_points()
        value = rng.choices((points[-1], points[0], points[len(points) // 2]), (0.6, 0.15, 0.25))[0]
        for q in self.scale_questions:
            answers[q.id] = value

    def _conflicting(self, rng: random.Random, original: dict[str, Any]) -> dict[str, Any]:
        """The same submission id with other content: a page that re-submitted after an edit."""
        body = _copy_body(original)
        answers: dict[str, Any] = body["answers"]
        changeable = [q for q in self.scale_questions if q.max > q.min and q.id in answers]
        if changeable:
            q = rng.choice(changeable)
            answers[q.id] = rng.choice([v for v in range(q.min, q.max + 1) if v != answers[q.id]])
            self._vary(rng, answers)
        else:
            body["opinion"] = rng.choice(OPINIONS) + "（补充）"
        submitted = dt.datetime.fromisoformat(body["submitted_at"])
        body["submitted_at"] = (submitted + dt.timedelta(seconds=rng.randint(5, 90))).isoformat()
        return body

    def _unknown_code(self, rng: random.Random) -> str:
        # A mistyped or last campaign's code: looks like a real one, is not in the registry.
        while True:
            code = "".join(rng.choice(_CODE_ALPHABET) for _ in range(8))
            if code not in self.link_codes:
                return code

    def _pick_recent(self, rng: random.Random) -> dict[str, Any]:
        n = len(self._recent)
        back = rng.randrange(min(n, _RESEND_WINDOW))
        return self._recent[(self._recent_next - 1 - back) % n]

    def _remember(self, body: dict[str, Any]) -> None:
        kept = _copy_body(body)
        if len(self._recent) < self._memory:
            self._recent.append(kept)
        else:
            self._recent[self._recent_next] = kept
        self._recent_next = (self._recent_next + 1) % self._memory
        device = body.get("device_id")
        if isinstance(device, str):
            if len(self._devices) < self._memory:
                self._devices.append(device)
            else:
                self._devices[self._devices_next] = device
            self._devices_next = (self._devices_next + 1) % self._memory


def _is_none_option(option: str) -> bool:
    """An option that rules out the others ("none of these")."""
    return option in {"无", "没有"} or option.startswith(_NONE_PREFIXES)


def _stale_option(rng: random.Random, options: Sequence[str]) -> str:
    candidates = [o for o in STALE_OPTIONS if o not in options]
    return rng.choice(candidates) if candidates else "-".join(options) + "-x"


# Successive make_sheet calls with the same rng are one stream (resends refer back within it);
# the factory for that stream hangs off the rng and goes away with it.
_FACTORIES: weakref.WeakKeyDictionary[random.Random, SheetFactory] = weakref.WeakKeyDictionary()


def generate_sheet(
    definition: CampaignDefinition,
    rng: random.Random,
    now: dt.datetime,
    *,
    valid_share: float = 0.9,
) -> GeneratedSheet:
    """The next sheet of the stream `rng` drives, with the flaw it carries (None when valid)."""
    f = _FACTORIES.get(rng)
    if f is None or f.definition is not definition or f.valid_share != valid_share:
        f = _FACTORIES[rng] = SheetFactory(definition, valid_share=valid_share)
    return f.make(rng, now)


def make_sheet(
    definition: CampaignDefinition,
    rng: random.Random,
    now: dt.datetime,
    *,
    valid_share: float = 0.9,
) -> dict[str, Any]:
    """One answer-sheet body, ready to post: valid with probability `valid_share`, otherwise
    carrying one flaw (see FLAW_REASONS). Calls with the same rng form one stream, so resends
    and reused device ids refer to earlier sheets of that stream; `now` is the submit time."""
    return generate_sheet(definition, rng, now, valid_share=valid_share).body

