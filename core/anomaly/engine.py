"""The anomaly engine: every detector over a stream of verdicts, in one pass, bounded memory.

`AnomalyEngine.observe(judged)` folds one verdict into per-link and per-campaign sketches and
returns the findings it raises (usually none). It reads nothing but the verdicts, in the order
given, and time is the verdicts' receive time, never the clock: a replay of the same log raises
the same findings with the same ids. Findings never touch a verdict or a count.

State per link: the current hour's counters (Space-Saving heavy hitters for network prefixes,
devices and shared answers; a fast-sheet count), a ring of its last hourly counts and a 24-hour
profile. Per campaign: Count-Min sketches of the same keys (the reference a link is compared
with), an hour-of-day profile, a duration histogram and the near-duplicate text index. Each
verdict costs O(1) amortised work; links and text clusters are capped (AnomalyConfig). The text
index is core/anomaly/text_index.py; which answers are text, core/anomaly/text_questions.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import zoneinfo
from collections.abc import Iterable
from typing import Any

from core.anomaly.config import DETECTOR_VERSION, AnomalyConfig, ClusterConfig
from core.anomaly.sketches import (
    MAD_TO_SIGMA,
    CountMin,
    MinHasher,
    SpaceSaving,
    hash64,
    key64,
    median_mad,
    normalise_text,
    shingles,
    signature_hex,
    top,
)
from core.anomaly.sketches import Counter as HeavyHitter
from core.anomaly.state import (
    DURATION_BIN,
    DURATION_BINS,
    CampaignState,
    LinkState,
    jsd,
    median_of_histogram,
)
from core.anomaly.text_questions import TextQuestions, text_questions_from
from schemas.events import AnomalyKind, FindingEvidence, FindingRaised, SubmissionJudged

# text_questions_from is re-exported: the runtimes know it from here.
__all__ = ["AnomalyEngine", "TextQuestions", "finding_id", "text_questions_from"]

# A string answer longer than this is taken for text when the questionnaire is unknown.
_TEXT_GUESS_CHARS = 12

_MEDIAN_EVERY = 256  # sheets between recomputations of a campaign's median duration


def finding_id(anomaly: str, *parts: object) -> str:
    text = "\x1f".join([anomaly, *(str(p) for p in parts)])
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class AnomalyEngine:
    """All detectors over one stream of verdicts (see the module docstring)."""

    def __init__(
        self, config: AnomalyConfig | None = None, text_questions: TextQuestions | None = None
    ) -> None:
        self.config = config or AnomalyConfig()
        self.text_questions = text_questions or (lambda campaign, version: None)
        self.tz = zoneinfo.ZoneInfo(self.config.timezone)
        self.minhash = MinHasher(
            self.config.text.bands, self.config.text.rows, self.config.text.signature_size
        )
        self.campaigns: dict[str, CampaignState] = {}
        self.links_tracked = 0
        self._band_of: dict[str, int] = {}

    # What a checkpoint holds (stream_processors/detector_checkpoint.py): everything the
    # verdicts built, nothing the engine was made with (its config, the questionnaire lookup).
    _STATE = ("campaigns", "links_tracked", "_band_of")

    def state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._STATE}

    def resume(self, state: dict[str, Any]) -> None:
        """Continue from `state()` of an engine with the same config, as if never stopped."""
        if set(state) != set(self._STATE):
            raise ValueError(f"detector state with {sorted(state)}, expected {self._STATE}")
        for name in self._STATE:
            setattr(self, name, state[name])

    # -- features, shared with FindingScope ------------------------------------------------------

    def _answers(self, judged: SubmissionJudged) -> tuple[dict[str, Any], frozenset[str] | None]:
        try:
            answers = json.loads(judged.answers_json)
        except ValueError:
            answers = {}
        if not isinstance(answers, dict):
            answers = {}
        return answers, self.text_questions(judged.campaign, judged.questionnaire_version)

    @staticmethod
    def _is_text(qid: str, value: object, text_ids: frozenset[str] | None) -> bool:
        if text_ids is not None:
            return qid in text_ids
        return isinstance(value, str) and len(value) > _TEXT_GUESS_CHARS

    def answer_keys(
        self, judged: SubmissionJudged,
        parsed: tuple[dict[str, Any], frozenset[str] | None] | None = None,
    ) -> list[str]:
        """The sheet's closed answers cut into bands by question id: "band:hash" per band with
        enough questions. Sheets sharing a key answered those questions identically."""
        answers, text_ids = parsed or self._answers(judged)
        cfg = self.config.answers
        groups: list[list[str]] = [[] for _ in range(cfg.bands)]
        for qid in sorted(answers):
            value = answers[qid]
            if self._is_text(qid, value, text_ids):
                continue
            if isinstance(value, list):
                value = ",".join(sorted(str(v) for v in value))
            band = self._band_of.get(qid)
            if band is None:
                band = self._band_of.setdefault(qid, hash64("band:" + qid) % cfg.bands)
            groups[band].append(f"{qid}={value}")
        return [
            f"{i}:{hash64('|'.join(g)):016x}"
            for i, g in enumerate(groups)
            if len(g) >= cfg.min_questions_per_band
        ]

    def free_text(
        self, judged: SubmissionJudged,
        parsed: tuple[dict[str, Any], frozenset[str] | None] | None = None,
    ) -> str:
        """The sheet's free text (already masked by the judge), normalised; "" if too short."""
        answers, text_ids = parsed or self._answers(judged)
        parts = [judged.opinion] if judged.opinion else []
        parts += [
            v for q, v in sorted(answers.items())
            if isinstance(v, str) and self._is_text(q, v, text_ids)
        ]
        text = normalise_text(" ".join(parts))
        return text if len(text) >= self.config.text.min_chars else ""

    def text_signature(
        self, judged: SubmissionJudged,
        parsed: tuple[dict[str, Any], frozenset[str] | None] | None = None,
    ) -> tuple[int, ...] | None:
        text = self.free_text(judged, parsed)
        if not text:
            return None
        return self.minhash.signature(shingles(text, self.config.text.shingle))

    def local_hour(self, at: dt.datetime) -> int:
        return at.astimezone(self.tz).hour

    def fast_below(self, campaign: str) -> float:
        """Durations under this are "fast" in the campaign right now (0 before a reference)."""
        camp = self.campaigns.get(campaign)
        return self.config.speed.fast_factor * camp.median_duration if camp else 0.0

    # -- the stream --------------------------------------------------------------------------------

    def observe_many(self, rows: Iterable[SubmissionJudged]) -> list[FindingRaised]:
        out: list[FindingRaised] = []
        for row in rows:
            out.extend(self.observe(row))
        return out

    def observe(self, judged: SubmissionJudged) -> list[FindingRaised]:
        # Test-phase sheets never count and conflicting resends are the same sheet again.
        if judged.status == "test" or not judged.first_of_id or not judged.campaign:
            return []
        camp = self.campaigns.get(judged.campaign)
        if camp is None:
            camp = self.campaigns[judged.campaign] = CampaignState(self.config, self.minhash)
        out: list[FindingRaised] = []
        parsed = self._answers(judged)
        signature = self.text_signature(judged, parsed)
        if signature is not None:
            found = self._text(camp, judged, signature)
            if found is not None:
                out.append(found)
        if not judged.unit or not judged.link_code:
            return out  # no link to credit: nothing link-level to watch
        window = math.floor(judged.received_at.timestamp() / self.config.window_seconds)
        link = self._link(camp, judged, window)
        if link is None:
            return out
        camp.n += 1
        if window not in camp.window_counts:
            camp.window_counts[window] = 0
            for old in [w for w in camp.window_counts
                        if w < window - self.config.burst.history_hours - 1]:
                del camp.window_counts[old]
        camp.window_counts[window] += 1
        link.n += 1
        if len(link.samples) < self.config.max_samples:
            link.samples.append(judged.submission_id)
        sid = judged.submission_id
        maybe: list[FindingRaised | None] = [self._burst(camp, judged, link, window)]
        if judged.network:
            k = key64(judged.network)
            camp.networks.add(k)
            c = link.networks.add(judged.network, sid)
            maybe.append(self._cluster("network_cluster", self.config.network, camp.networks,
                                       camp, link, c, judged.network, k, judged, window))
        if judged.device_hash:
            k = key64(judged.device_hash)
            camp.devices.add(k)
            c = link.devices.add(judged.device_hash, sid)
            maybe.append(self._cluster("device_cluster", self.config.device, camp.devices,
                                       camp, link, c, judged.device_hash, k, judged, window))
        for answer_key in self.answer_keys(judged, parsed):
            k = hash64(answer_key)
            camp.answers.add(k)
            c = link.answers.add(answer_key, sid)
            maybe.append(self._cluster("answer_cluster", self.config.answers.cluster,
                                       camp.answers, camp, link, c, answer_key, k, judged,
                                       window))
        maybe.append(self._speed(camp, link, judged, window))
        maybe.append(self._time_of_day(camp, link, judged))
        out.extend(f for f in maybe if f is not None)
        return out

    # -- state -------------------------------------------------------------------------------------

    def _link(self, camp: CampaignState, judged: SubmissionJudged, window: int) -> LinkState | None:
        link = camp.links.get(judged.link_code)
        if link is None:
            if self.links_tracked >= self.config.max_links:
                return None
            self.links_tracked += 1
            link = camp.links[judged.link_code] = LinkState(judged.unit, window, window)
            link.first_at = judged.received_at
            link.networks = SpaceSaving(16, self.config.max_samples)
            link.devices = SpaceSaving(16, self.config.max_samples)
            link.answers = SpaceSaving(16 * self.config.answers.bands, self.config.max_samples)
        if window > link.window:
            self._roll(camp, link, window)
        # A sheet from an hour already closed (out of order) is counted in the current one.
        return link

    def _roll(self, camp: CampaignState, link: LinkState, window: int) -> None:
        # The link's history is its share of the campaign's sheets per window, not its raw count:
        # the daily rhythm and campaign-wide pushes move every link alike and are not bursts.
        cfg = self.config.burst
        history = link.history
        for w in range(max(link.window, window - cfg.history_hours), window):
            total = camp.window_counts.get(w, 0)
            if total:
                history.append((link.n if w == link.window else 0) / total)
        while len(history) > cfg.history_hours:
            history.popleft()
        link.baseline = (
            median_mad(list(history)) if len(history) >= cfg.min_history_hours else None
        )
        link.window = window
        link.n = 0
        link.samples = []
        link.networks = SpaceSaving(link.networks.capacity, self.config.max_samples)
        link.devices = SpaceSaving(link.devices.capacity, self.config.max_samples)
        link.answers = SpaceSaving(link.answers.capacity, self.config.max_samples)
        link.fast = 0
        link.fast_samples = []
        link.emitted = {k: v for k, v in link.emitted.items() if k.startswith("tod:")}

    def _window(self, window: int) -> tuple[dt.datetime, dt.datetime]:
        size = self.config.window_seconds
        start = dt.datetime.fromtimestamp(window * size, dt.UTC)
        return start, start + dt.timedelta(seconds=size)

    @staticmethod
    def _revision(emitted: dict[str, tuple[int, int]], key: str, observed: int) -> int | None:
        """The revision to raise a finding with now: 1 the first time, then again each time its
        evidence has doubled (a handful of events per finding, however large it grows)."""
        prev = emitted.get(key)
        if prev is None:
            emitted[key] = (1, observed)
            return 1
        if observed >= 2 * prev[1]:
            emitted[key] = (prev[0] + 1, observed)
            return prev[0] + 1
        return None

    def _finding(
        self, anomaly: AnomalyKind, fid: str, revision: int, judged: SubmissionJudged,
        window: tuple[dt.datetime, dt.datetime], score: float, evidence: FindingEvidence,
        link: str = "", unit: str = "",
    ) -> FindingRaised:
        return FindingRaised(
            finding_id=fid, revision=revision, anomaly=anomaly,
            detector_version=DETECTOR_VERSION, campaign=judged.campaign, link_code=link,
            unit=unit, window_start=window[0], window_end=window[1],
            raised_at=judged.received_at, score=round(score, 3), evidence=evidence,
        )

    # -- detectors ---------------------------------------------------------------------------------

    def _burst(
        self, camp: CampaignState, judged: SubmissionJudged, link: LinkState, window: int
    ) -> FindingRaised | None:
        if link.baseline is None:
            return None
        cfg = self.config.burst
        share, mad = link.baseline
        now = camp.window_counts.get(window, 0)
        expected = share * now
        spread = max(MAD_TO_SIGMA * mad * now, math.sqrt(max(expected, 1.0)))
        c = link.n
        if c < cfg.min_count or c < cfg.min_ratio * max(expected, cfg.expected_floor):
            return None
        if (c - expected) / spread < cfg.min_z:
            return None
        fid = finding_id("burst", judged.campaign, judged.link_code, window)
        revision = self._revision(link.emitted, fid, c)
        if revision is None:
            return None
        evidence = FindingEvidence(
            observed=c, expected=round(expected, 4), total=now,
            sample_submission_ids=tuple(link.samples), baseline_median=round(share, 6),
            baseline_mad=round(mad, 6), links=(judged.link_code,), units=(link.unit,),
        )
        return self._finding("burst", fid, revision, judged, self._window(window),
                             c / max(expected, cfg.expected_floor), evidence, judged.link_code,
                             link.unit)

    def _cluster(
        self, anomaly: AnomalyKind, cfg: ClusterConfig, reference: CountMin, camp: CampaignState,
        link: LinkState, counter: HeavyHitter, key: str, key_hash: int, judged: SubmissionJudged,
        window: int,
    ) -> FindingRaised | None:
        c = counter.guaranteed
        if c < cfg.min_count or c < cfg.min_share * link.n or camp.n < cfg.min_reference:
            return None
        # The key's share in the rest of the campaign (this link's hour left out); a key never
        # seen elsewhere counts as half a sheet, so the lift stays finite.
        others = max(reference.estimate(key_hash) - counter.count, 0)
        p = max(others, 0.5) / max(camp.n - link.n, 1)
        expected = link.n * p
        lift = c / expected
        if lift < cfg.min_lift:
            return None
        fid = finding_id(anomaly, judged.campaign, judged.link_code, key, window)
        revision = self._revision(link.emitted, fid, c)
        if revision is None:
            return None
        evidence = FindingEvidence(
            observed=c, expected=round(expected, 4), total=link.n,
            sample_submission_ids=tuple(counter.samples),
            network=key if anomaly == "network_cluster" else "",
            device_hash=key if anomaly == "device_cluster" else "",
            answer_key=key if anomaly == "answer_cluster" else "",
            links=(judged.link_code,), units=(link.unit,),
        )
        return self._finding(anomaly, fid, revision, judged, self._window(window), lift,
                             evidence, judged.link_code, link.unit)

    def _speed(
        self, camp: CampaignState, link: LinkState, judged: SubmissionJudged, window: int
    ) -> FindingRaised | None:
        cfg = self.config.speed
        seconds = max(judged.duration_seconds, 0.5)
        b = min(DURATION_BINS - 1, max(0, int(math.log(seconds) / DURATION_BIN)))
        camp.durations[b] += 1
        if camp.n % _MEDIAN_EVERY == 1 or camp.median_duration == 0.0:
            camp.median_duration = median_of_histogram(camp.durations)
        fast_below = cfg.fast_factor * camp.median_duration
        if seconds >= fast_below:
            return None
        camp.fast += 1
        link.fast += 1
        if len(link.fast_samples) < self.config.max_samples:
            link.fast_samples.append(judged.submission_id)
        f = link.fast
        if f < cfg.min_count or f < cfg.min_share * link.n or camp.n < cfg.min_reference:
            return None
        q = max(camp.fast - f, 0.5) / max(camp.n - link.n, 1)
        expected = q * link.n
        lift = f / expected
        if lift < cfg.min_lift:
            return None
        fid = finding_id("speeders", judged.campaign, judged.link_code, window)
        revision = self._revision(link.emitted, fid, f)
        if revision is None:
            return None
        evidence = FindingEvidence(
            observed=f, expected=round(expected, 4), total=link.n,
            sample_submission_ids=tuple(link.fast_samples),
            fast_below_seconds=round(fast_below, 1), links=(judged.link_code,),
            units=(link.unit,),
        )
        return self._finding("speeders", fid, revision, judged, self._window(window), lift,
                             evidence, judged.link_code, link.unit)

    def _time_of_day(
        self, camp: CampaignState, link: LinkState, judged: SubmissionJudged
    ) -> FindingRaised | None:
        cfg = self.config.time_of_day
        hour = self.local_hour(judged.received_at)
        camp.hours[hour] += 1
        link.hours[hour] += 1
        link.hours_n += 1
        samples = link.hours_samples.setdefault(hour, [])
        if len(samples) < self.config.max_samples:
            samples.append(judged.submission_id)
        n = link.hours_n
        if n < cfg.min_count or n % cfg.check_every:
            return None
        # The rest of the campaign's profile (this link left out), with one sheet per hour added
        # so no hour is impossible.
        rest = [camp.hours[h] - link.hours[h] + 1 for h in range(24)]
        rest_total = sum(rest)
        expected = [n * r / rest_total for r in rest]
        g = 2.0 * sum(o * math.log(o / e) for o, e in zip(link.hours, expected, strict=True) if o)
        if g < cfg.min_g or jsd(link.hours, rest) < cfg.min_jsd:
            return None
        hours = tuple(
            h for h in range(24)
            if link.hours[h] >= cfg.hour_min_count
            and link.hours[h] >= cfg.hour_min_lift * expected[h]
        )
        if not hours:
            return None
        fid = finding_id("time_of_day", judged.campaign, judged.link_code)
        revision = self._revision(link.emitted, "tod:" + fid, n)
        if revision is None:
            return None
        observed = sum(link.hours[h] for h in hours)
        evidence = FindingEvidence(
            observed=observed, expected=round(sum(expected[h] for h in hours), 4), total=n,
            sample_submission_ids=tuple(
                s for h in hours for s in link.hours_samples.get(h, ())
            )[: self.config.max_samples],
            hours=hours, links=(judged.link_code,), units=(link.unit,),
        )
        start = link.first_at or judged.received_at
        return self._finding("time_of_day", fid, revision, judged, (start, judged.received_at),
                             g, evidence, judged.link_code, link.unit)

    def _text(
        self, camp: CampaignState, judged: SubmissionJudged, signature: tuple[int, ...]
    ) -> FindingRaised | None:
        cfg = self.config.text
        cluster = camp.text.add(signature, judged)
        if cluster.count < cfg.min_count or cluster.count < 2 * cluster.emitted_count:
            return None
        cluster.revision += 1
        cluster.emitted_count = cluster.count
        fid = finding_id("text_near_duplicate", judged.campaign, cluster.first_id)
        evidence = FindingEvidence(
            observed=cluster.count, expected=1.0, total=cluster.count,
            sample_submission_ids=tuple(cluster.samples or (cluster.first_id,)),
            text_signature=signature_hex(cluster.signature), min_similarity=cfg.min_similarity,
            links=top((cluster.links or {}).items(), 10),
            units=top((cluster.units or {}).items(), 10),
        )
        return self._finding("text_near_duplicate", fid, cluster.revision, judged,
                             (cluster.first_at, judged.received_at), float(cluster.count),
                             evidence)
