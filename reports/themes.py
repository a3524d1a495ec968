"""The most frequent themes of free-text opinions: jieba word counts with stop words removed."""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final

# Function words and survey boilerplate that say nothing about a theme. Short on purpose:
# single characters are dropped anyway, so only two-or-more-character words need listing.
STOP_WORDS: Final = frozenset(
    """
    希望 建议 加强 进一步 一些 一下 还是 仍然 仍需 以及 或者 而且 并且 但是 因为 所以 如果
    我们 你们 他们 自己 这个 那个 这些 那些 什么 怎么 如何 为什么 可以 能够 应该 需要 已经
    非常 比较 特别 更加 太多 很多 问题 情况 方面 工作 有关 相关 部门 有效 及时 更好 一定
    没有 不是 就是 还有 其他 目前 现在 以后 今后 继续 持续 感觉 觉得 认为 明显 整体 总体
    遇到 遇到过 容易 出现 进行 开展 提高 加大 力度 注意 关注 一个 多多 有些 部分 经常 各种 对于
    the and for with that this are was you
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
_WORDLIKE = re.compile(r"[\w\u4e00-\u9fff]{2,}")
_NUMERIC = re.compile(r"[\d*]+")

_jieba: Any = None
_jieba_lock = threading.Lock()


def _tokenizer() -> Any:
    """jieba, loaded once (its dictionary takes about a second) and quietly."""
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
        return _jieba


def words(text: str) -> list[str]:
    """The theme-bearing words of one text: jieba's segmentation minus stop words, single
    characters, numbers (masked numbers too) and punctuation."""
    out = []
    for token in _tokenizer().lcut(text):
        word = token.strip().lower()
        if (
            len(word) >= 2
            and _WORDLIKE.fullmatch(word)
            and not _NUMERIC.fullmatch(word)
            and word not in STOP_WORDS
        ):
            out.append(word)
    return out


def top_themes(texts: Iterable[str], limit: int = 30) -> list[tuple[str, int]]:
    """The most frequent words over all texts, counted once per text (a word repeated in one
    opinion is one voice), most frequent first, ties by the word."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(set(words(text)))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
