"""Near-duplicate free text of one campaign: MinHash signatures clustered through LSH buckets,
bounded in clusters (least recently joined forgotten first) and in what each cluster keeps."""

from __future__ import annotations

from collections import OrderedDict

from core.anomaly.config import AnomalyConfig
from core.anomaly.sketches import MinHasher, similarity
from schemas.events import SubmissionJudged


class Cluster:
    """A text cluster, kept small: most clusters are one unique text that never grows."""

    __slots__ = ("cluster_id", "count", "emitted_count", "first_at", "first_id", "first_link",
                 "first_unit", "links", "revision", "samples", "signature", "units")

    def __init__(self, cluster_id: int, signature: tuple[int, ...], judged: SubmissionJudged):
        self.cluster_id = cluster_id
        self.signature = signature
        self.first_id = judged.submission_id
        self.first_at = judged.received_at
        self.first_link = judged.link_code
        self.first_unit = judged.unit
        self.count = 0
        self.revision = 0
        self.emitted_count = 0
        # Filled from the second member on.
        self.links: dict[str, int] | None = None
        self.units: dict[str, int] | None = None
        self.samples: list[str] | None = None


class TextIndex:
    """Near-duplicate free text of one campaign: clusters found through MinHash LSH buckets.

    A bucket holds one cluster id, or a short list when several clusters share it."""

    def __init__(self, config: AnomalyConfig, minhash: MinHasher) -> None:
        self.config = config.text
        self.minhash = minhash
        self.max_samples = config.max_samples
        self.clusters: OrderedDict[int, Cluster] = OrderedDict()  # least recently joined first
        self.buckets: dict[int, int | list[int]] = {}
        self.next_id = 0

    def add(self, signature: tuple[int, ...], judged: SubmissionJudged) -> Cluster:
        cfg = self.config
        band_keys = self.minhash.band_keys(signature)
        best: Cluster | None = None
        best_sim = cfg.min_similarity
        seen: set[int] = set()
        for key in band_keys:
            held = self.buckets.get(key)
            for cid in (() if held is None else (held,) if isinstance(held, int) else held):
                if cid in seen:
                    continue
                seen.add(cid)
                cluster = self.clusters[cid]
                sim = similarity(signature, cluster.signature)
                if sim >= best_sim and (best is None or sim > best_sim):
                    best, best_sim = cluster, sim
        if best is None:
            best = Cluster(self.next_id, signature, judged)
            self.next_id += 1
            self.clusters[best.cluster_id] = best
            for key in band_keys:
                held = self.buckets.get(key)
                if held is None:
                    self.buckets[key] = best.cluster_id
                elif isinstance(held, int):
                    self.buckets[key] = [held, best.cluster_id]
                else:
                    held.append(best.cluster_id)
                    if len(held) > cfg.bucket_candidates:
                        del held[0]
            while len(self.clusters) > cfg.max_clusters:
                self._forget(self.clusters.popitem(last=False)[1])
        else:
            self.clusters.move_to_end(best.cluster_id)
        best.count += 1
        if best.count == 1:
            return best
        if best.links is None or best.units is None or best.samples is None:
            # The first member's details, kept only once the cluster grows.
            best.links = {best.first_link: 1} if best.first_link else {}
            best.units = {best.first_unit: 1} if best.first_unit else {}
            best.samples = [best.first_id]
        if judged.link_code and (judged.link_code in best.links or len(best.links) < 64):
            best.links[judged.link_code] = best.links.get(judged.link_code, 0) + 1
        if judged.unit and (judged.unit in best.units or len(best.units) < 64):
            best.units[judged.unit] = best.units.get(judged.unit, 0) + 1
        if len(best.samples) < self.max_samples:
            best.samples.append(judged.submission_id)
        return best

    def _forget(self, cluster: Cluster) -> None:
        for key in self.minhash.band_keys(cluster.signature):
            held = self.buckets.get(key)
            if held == cluster.cluster_id:
                del self.buckets[key]
            elif isinstance(held, list) and cluster.cluster_id in held:
                held.remove(cluster.cluster_id)
                if len(held) == 1:
                    self.buckets[key] = held[0]
