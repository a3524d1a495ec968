"""Link- and unit-level anomaly detection over judged submissions: pure, deterministic, bounded.

Findings are evidence for organisers (bursts, network/device clusters, shared answers,
near-duplicate free text, odd time-of-day profiles, speeders); they never change a count.
"""

from core.anomaly.config import DETECTOR_VERSION, AnomalyConfig
from core.anomaly.engine import AnomalyEngine, TextQuestions, text_questions_from

__all__ = [
    "DETECTOR_VERSION", "AnomalyConfig", "AnomalyEngine", "TextQuestions", "text_questions_from",
]
