"""Generated campaigns with injected padding, labelled, for measuring the anomaly detectors.

`simulate` makes days of honest traffic (the demo generator's sheets, received along a daily
rhythm, from networks and devices drawn the way real respondents' are) and mixes in padding
scenarios, each sheet labelled with the scenario it belongs to (None: honest):

- `BotFarm`: many sheets on one link, at night, from a couple of networks and a handful of
  devices, with answers copied from one template and lightly varied;
- `OpinionRing`: the same few opinions pasted, with small edits, through many links over days,
  from ordinary-looking respondents;
- `SpeederCohort`: a cohort clicking through one link far faster than anyone else;
- `NetworkBurst`: one network sending a link many times its usual hourly traffic.

`measure` runs verdicts through an AnomalyEngine and reports, per scenario, the precision and
recall of the findings over sheets (a sheet is flagged when a finding's scope covers it), and the
share of honest sheets flagged. Everything is driven by one seed: the same seed, the same sheets.
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.anomaly.engine import AnomalyEngine
from core.anomaly.scope import covers, latest
from core.privacy import keyed_hash, network_prefix
from schemas.campaign import CampaignDefinition, Link, ScaleQuestion, TextQuestion
from schemas.events import AnomalyKind, FindingRaised, SubmissionJudged, SubmissionReceived
from simulation.generator import SheetFactory, _uuid4

# Relative traffic per local hour of the day: quiet nights, a morning and an evening peak.
DAILY_RHYTHM: tuple[float, ...] = (
    0.25, 0.12, 0.07, 0.05, 0.05, 0.1, 0.3, 0.6, 0.9, 1.1, 1.2, 1.15,
    1.0, 0.95, 1.0, 1.05, 1.0, 0.95, 0.9, 1.0, 1.25, 1.3, 1.0, 0.6,
)

# Honest free text is composed from fragments: respondents write in their own words, and the
# demo generator's few stock sentences would be a copy-paste ring by construction.
_OPENERS = (
    "我觉得", "个人认为", "说实话", "总的来说", "希望", "建议", "最近", "我家里人", "身边朋友",
    "作为一名老师", "作为上班族", "我是学生", "我们小区", "在农村", "我父母", "去年",
)
_TOPICS = (
    "诈骗电话", "垃圾短信", "个人信息泄露", "App乱要权限", "网络谣言", "网络暴力", "账号被盗",
    "虚假广告", "游戏充值", "直播带货", "网购退款", "快递信息", "人脸识别", "公共WiFi",
    "弹窗广告", "刷单兼职", "冒充客服", "投资理财骗局", "短视频低俗内容", "网贷催收",
)
_VIEWS = (
    "还是挺多的", "比以前少了一些", "让人很头疼", "防不胜防", "需要重点治理", "影响很大",
    "老人特别容易上当", "孩子容易受影响", "处理得不够及时", "举报后没有回音", "明显改善了",
    "平台应该负起责任", "监管要跟上", "希望多宣传", "要加大处罚力度", "很难分辨真假",
)
_WISHES = (
    "希望相关部门重视", "建议多做科普", "希望平台加强审核", "希望举报更方便", "建议立法更严",
    "希望运营商加强拦截", "建议社区多开讲座", "希望学校多教育", "希望继续保持", "谢谢",
    "加油", "希望越来越好", "建议公开处理结果", "希望简化流程", "",
)
_DETAILS = (
    "上个月就遇到一次", "一天能接好几个", "差点被骗", "已经报警了", "身边有人被骗过",
    "不知道怎么处理", "后来打了客服电话", "现在都不敢接陌生电话", "", "", "", "",
)


def honest_text(rng: random.Random) -> str:
    clauses = [
        rng.choice(_OPENERS) + rng.choice(_TOPICS) + rng.choice(_VIEWS)
        for _ in range(rng.choice((1, 2, 2, 3)))
    ]
    clauses.insert(rng.randrange(len(clauses) + 1), rng.choice(_DETAILS))
    clauses.append(rng.choice(_WISHES))
    return "，".join(c for c in clauses if c) + rng.choice(("。", "！", "", "。。", "~"))


# Pasted opinions of a ring: long enough to be worth pasting, and not what honest text says.
RING_TEMPLATES = (
    "强烈建议主办方把本单位评为优秀组织单位，我们单位网络安全宣传工作做得非常扎实到位，群众满意度很高。",
    "本地区网络环境非常好，从来没有遇到过任何网络诈骗和个人信息泄露问题，对各项工作百分之百满意。",
    "感谢网信部门的辛勤付出，网络安全知识普及工作深入人心，建议继续加大投入，推广我们的先进经验。",
)


def _edit(rng: random.Random, text: str) -> str:
    """A pasted text with small edits: a character swapped, dropped or added, punctuation."""
    chars = list(text)
    for _ in range(rng.randint(0, 2)):
        i = rng.randrange(len(chars))
        op = rng.random()
        if op < 0.4:
            chars[i] = rng.choice("的了很也都是")
        elif op < 0.7:
            del chars[i]
        else:
            chars.insert(i, rng.choice("，。！啊呀"))
    return "".join(chars) + rng.choice(("", "！", "。", "!!", "👍"))


@dataclass(frozen=True)
class BotFarm:
    name: str = "bot_farm"
    sheets: int = 400
    day: int = 1  # which day of the simulation (0-based)
    start_hour: int = 1  # local time
    hours: int = 4
    devices: int = 5
    networks: int = 2
    vary: float = 0.08  # chance each answer differs from the template


@dataclass(frozen=True)
class OpinionRing:
    name: str = "opinion_ring"
    sheets: int = 90
    links: int = 12
    first_day: int = 0
    days: int = 3


@dataclass(frozen=True)
class SpeederCohort:
    name: str = "speeders"
    sheets: int = 120
    day: int = 2
    start_hour: int = 14
    hours: int = 3
    seconds: tuple[int, int] = (15, 75)  # some under the questionnaire's min_seconds, some not


@dataclass(frozen=True)
class NetworkBurst:
    name: str = "network_burst"
    sheets: int = 300
    day: int = 1
    start_hour: int = 10
    minutes: int = 50


Scenario = BotFarm | OpinionRing | SpeederCohort | NetworkBurst
DEFAULT_SCENARIOS: tuple[Scenario, ...] = (
    BotFarm(), OpinionRing(), SpeederCohort(), NetworkBurst(),
)

# What each scenario is expected to be found by.
EXPECTED_KINDS: dict[str, frozenset[AnomalyKind]] = {
    "bot_farm": frozenset({"device_cluster", "network_cluster", "answer_cluster", "burst",
                           "time_of_day"}),
    "opinion_ring": frozenset({"text_near_duplicate"}),
    "speeders": frozenset({"speeders"}),
    "network_burst": frozenset({"burst", "network_cluster"}),
}


@dataclass(frozen=True)
class LabelledSheet:
    received: SubmissionReceived
    label: str | None  # the scenario's name; None for honest traffic


class _Networks:
    """Where honest respondents post from: per province a pool of /24 networks of very unequal
    size (carrier NAT gateways), so popular networks are shared by many honest respondents."""

    def __init__(self, definition: CampaignDefinition, per_province: int = 300) -> None:
        self.index = {p.id: i for i, p in enumerate(definition.provinces)}
        self.per_province = per_province
        self.cum = [0.0]
        for j in range(per_province):
            self.cum.append(self.cum[-1] + 1.0 / (j + 1) ** 1.1)

    def address(self, rng: random.Random, province: str) -> str:
        p = self.index.get(province, 0)
        x = rng.random() * self.cum[-1]
        lo, hi = 0, self.per_province
        while lo < hi:  # the first network whose cumulative weight exceeds x
            mid = (lo + hi) // 2
            if self.cum[mid + 1] > x:
                hi = mid
            else:
                lo = mid + 1
        return f"{20 + p}.{lo // 200}.{lo % 200}.{rng.randint(1, 254)}"


def simulate(
    definition: CampaignDefinition,
    *,
    seed: int = 7,
    days: int = 3,
    honest_per_day: int = 20_000,
    scenarios: Sequence[Scenario] = DEFAULT_SCENARIOS,
    start: dt.date = dt.date(2026, 11, 21),
    hash_key: str = "padding-simulation-key",
) -> list[LabelledSheet]:
    """Honest traffic plus the scenarios, as the collector would have appended it, in receive
    order. `start` must fall in a counting phase of the definition for the verdicts to count."""
    rng = random.Random(seed)
    tz = zoneinfo.ZoneInfo(definition.timezone)
    day0 = dt.datetime.combine(start, dt.time(), tz)
    factory = SheetFactory(definition)
    networks = _Networks(definition)
    text_ids = [q.id for q in definition.questionnaire.questions if isinstance(q, TextQuestion)]
    out: list[tuple[dt.datetime, int, dict[str, Any], str, str | None]] = []

    def add(at: dt.datetime, body: dict[str, Any], address: str, label: str | None) -> None:
        out.append((at, len(out), body, address, label))

    rhythm_cum = [0.0]
    for w in DAILY_RHYTHM:
        rhythm_cum.append(rhythm_cum[-1] + w)
    for day in range(days):
        for _ in range(honest_per_day):
            x = rng.random() * rhythm_cum[-1]
            hour = next(h for h in range(24) if rhythm_cum[h + 1] > x)
            at = day0 + dt.timedelta(days=day, hours=hour, seconds=rng.uniform(0, 3600))
            sheet = factory.make(rng, at)
            body = sheet.body
            for qid in text_ids:
                if isinstance(body["answers"].get(qid), str):
                    body["answers"][qid] = honest_text(rng)
            if "opinion" in body:
                body["opinion"] = honest_text(rng)
            add(at, body, networks.address(rng, body["respondent"]["province"]), None)

    honest_factory = SheetFactory(definition, valid_share=1.0)
    links = list(honest_factory.links)
    rng.shuffle(links)
    # Padding goes to links with some honest traffic of their own (a link nobody uses is a
    # trivially easy case), each scenario to its own.
    busy = sorted(links[:60], key=lambda lk: -_weight(honest_factory, lk))[:20]
    for n, scenario in enumerate(scenarios):
        link = busy[n % len(busy)]
        for at, body, address in _scenario(scenario, rng, honest_factory, link, links, day0,
                                           networks, text_ids):
            add(at, body, address, scenario.name)

    out.sort(key=lambda item: (item[0], item[1]))
    return [
        LabelledSheet(
            SubmissionReceived(
                received_at=at.astimezone(dt.UTC),
                client=keyed_hash(hash_key, address),
                network=keyed_hash(hash_key, network_prefix(address)),
                body=body,
            ),
            label,
        )
        for at, _, body, address, label in out
    ]


def _weight(factory: SheetFactory, link: Link) -> float:
    i = factory.links.index(link)
    cum = factory._link_cum
    return cum[i] - (cum[i - 1] if i else 0.0)


def _scenario(
    scenario: Scenario, rng: random.Random, factory: SheetFactory, link: Link,
    links: list[Link], day0: dt.datetime, networks: _Networks, text_ids: list[str],
) -> Iterable[tuple[dt.datetime, dict[str, Any], str]]:
    def honest_body(at: dt.datetime, code: str) -> dict[str, Any]:
        body = factory.make(rng, at).body
        body["link_code"] = code
        body.pop("opinion", None)
        for qid in text_ids:
            body["answers"].pop(qid, None)
        return body

    if isinstance(scenario, BotFarm):
        template = honest_body(day0, link.code)["answers"]
        devices = [_uuid4(rng) for _ in range(scenario.devices)]
        nets = [f"203.0.{113 + i}" for i in range(scenario.networks)]
        begin = day0 + dt.timedelta(days=scenario.day, hours=scenario.start_hour)
        for _ in range(scenario.sheets):
            at = begin + dt.timedelta(seconds=rng.uniform(0, scenario.hours * 3600))
            body = honest_body(at, link.code)
            answers = dict(template)
            for q in factory.scale_questions:
                if q.id in answers and rng.random() < scenario.vary:
                    answers[q.id] = _nudge(rng, q, answers[q.id])
            body["answers"] = answers
            body["device_id"] = rng.choice(devices)
            yield at, body, f"{rng.choice(nets)}.{rng.randint(1, 254)}"
    elif isinstance(scenario, OpinionRing):
        ring_links = rng.sample(links, scenario.links)
        begin = day0 + dt.timedelta(days=scenario.first_day)
        for _ in range(scenario.sheets):
            at = begin + dt.timedelta(seconds=rng.uniform(0, scenario.days * 86400))
            ring_link = rng.choice(ring_links)
            body = honest_body(at, ring_link.code)
            body["opinion"] = _edit(rng, rng.choice(RING_TEMPLATES))
            province = factory._link_province[ring_link.code]
            yield at, body, networks.address(rng, province)
    elif isinstance(scenario, SpeederCohort):
        begin = day0 + dt.timedelta(days=scenario.day, hours=scenario.start_hour)
        for _ in range(scenario.sheets):
            at = begin + dt.timedelta(seconds=rng.uniform(0, scenario.hours * 3600))
            body = honest_body(at, link.code)
            submitted = dt.datetime.fromisoformat(body["submitted_at"])
            seconds = rng.randint(*scenario.seconds)
            body["started_at"] = (submitted - dt.timedelta(seconds=seconds)).isoformat()
            yield at, body, networks.address(rng, factory._link_province[link.code])
    else:
        net = f"198.51.{100 + rng.randrange(50)}"
        begin = day0 + dt.timedelta(days=scenario.day, hours=scenario.start_hour)
        for _ in range(scenario.sheets):
            at = begin + dt.timedelta(seconds=rng.uniform(0, scenario.minutes * 60))
            yield at, honest_body(at, link.code), f"{net}.{rng.randint(1, 254)}"


def _nudge(rng: random.Random, q: ScaleQuestion, value: Any) -> Any:
    if not isinstance(value, int):
        return value
    options = [v for v in (value - 1, value + 1) if q.min <= v <= q.max]
    return rng.choice(options) if options else value


# -- measuring ------------------------------------------------------------------------------------

@dataclass
class ScenarioScore:
    name: str
    sheets: int
    found: int  # of its sheets, covered by a finding of an expected kind
    flagged: int  # sheets covered by findings of the expected kinds, whatever their label
    flagged_padded: int  # of those, padding (any scenario)
    kinds: dict[str, int] = field(default_factory=dict)  # findings of the expected kinds

    @property
    def recall(self) -> float:
        return self.found / self.sheets if self.sheets else 0.0

    @property
    def precision(self) -> float:
        return self.flagged_padded / self.flagged if self.flagged else 0.0


@dataclass
class Measurement:
    scenarios: dict[str, ScenarioScore]
    honest: int
    honest_flagged: int  # honest sheets covered by any finding
    findings: list[FindingRaised]  # latest revision of each

    @property
    def false_positive_rate(self) -> float:
        return self.honest_flagged / self.honest if self.honest else 0.0

    def table(self) -> str:
        lines = ["scenario        sheets  precision  recall  findings (expected kinds)"]
        for s in self.scenarios.values():
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(s.kinds.items()))
            lines.append(f"{s.name:<15} {s.sheets:>6}  {s.precision:>9.3f}  {s.recall:>6.3f}"
                         f"  {kinds}")
        lines.append(f"honest sheets flagged: {self.honest_flagged} of {self.honest}"
                     f" ({self.false_positive_rate:.4%})")
        return "\n".join(lines)


def measure(
    engine: AnomalyEngine,
    verdicts: Sequence[tuple[SubmissionJudged, str | None]],
    findings: Sequence[FindingRaised],
) -> Measurement:
    """Precision and recall per scenario over sheets, and the honest sheets flagged, given the
    verdicts (with their labels) the engine observed and the findings it raised."""
    final = latest(list(findings))
    by_kind: dict[str, list[FindingRaised]] = {}
    for f in final:
        by_kind.setdefault(f.anomaly, []).append(f)
    flagged_kinds: list[set[AnomalyKind]] = []
    for judged, _ in verdicts:
        memo: dict[str, Any] = {}
        kinds = {
            f.anomaly for fs in by_kind.values() for f in fs
            if f.link_code in ("", judged.link_code) and covers(engine, f, judged, memo)
        }
        flagged_kinds.append(kinds)
    names = sorted({label for _, label in verdicts if label is not None})
    scores: dict[str, ScenarioScore] = {}
    for name in names:
        expected: frozenset[AnomalyKind] = EXPECTED_KINDS.get(name, frozenset())
        score = ScenarioScore(name, 0, 0, 0, 0, {
            k: len(by_kind.get(k, [])) for k in sorted(expected) if by_kind.get(k)
        })
        for (_, label), kinds in zip(verdicts, flagged_kinds, strict=True):
            hit = bool(kinds & expected)
            if label == name:
                score.sheets += 1
                score.found += hit
            if hit:
                score.flagged += 1
                score.flagged_padded += label is not None
        scores[name] = score
    honest = [kinds for (_, label), kinds in zip(verdicts, flagged_kinds, strict=True)
              if label is None]
    return Measurement(scores, len(honest), sum(1 for k in honest if k), final)


def judge_all(
    sheets: Sequence[LabelledSheet], definition: CampaignDefinition, hash_key: str
) -> list[tuple[SubmissionJudged, str | None]]:
    """Judge the sheets in order, as the embedded processor does (resends dropped)."""
    from core.judge import JudgeState, judge
    from core.registry import Registry
    from schemas.events import CampaignDefined

    registry = Registry()
    registry.apply(CampaignDefined(campaign=definition.campaign, defined_at=dt.datetime(
        2026, 1, 1, tzinfo=dt.UTC), definition=definition))
    state = JudgeState.empty()
    out: list[tuple[SubmissionJudged, str | None]] = []
    for i, sheet in enumerate(sheets):
        judged, resend = judge(sheet.received, f"0:{i}", registry, state, hash_key)
        if not resend:
            out.append((judged, sheet.label))
    return out

