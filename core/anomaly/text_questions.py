"""Which answers of a questionnaire are free text, for the text detectors: looked up in the
registry's questionnaires, (campaign, questionnaire_version) -> question ids."""

from __future__ import annotations

from collections.abc import Callable

from core.registry import Registry
from schemas.campaign import TextQuestion

# None when unknown (then the engine takes a string answer longer than a few characters for text).
TextQuestions = Callable[[str, str], frozenset[str] | None]


def text_questions_from(registry: Registry) -> TextQuestions:
    """Which answers are free text, as the registry's questionnaires define them."""
    cache: dict[tuple[str, str], tuple[object, frozenset[str]]] = {}

    def lookup(campaign: str, version: str) -> frozenset[str] | None:
        state = registry.get(campaign)
        questionnaire = state.questionnaires.get(version) if state else None
        if questionnaire is None:
            return None
        hit = cache.get((campaign, version))
        if hit is None or hit[0] is not questionnaire:
            ids = frozenset(q.id for q in questionnaire.questions if isinstance(q, TextQuestion))
            hit = cache[(campaign, version)] = (questionnaire, ids)
        return hit[1]

    return lookup
