"""A shipped fake of the events port's poster: answers from a script, remembers each post."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from connector.domain.events import PostAnswer


@dataclass
class FakeEventPoster:
    """Implements ``EventPoster``: ``answers`` are given out in order (then 200 each time);
    ``posts`` keeps ``(url, body, headers)`` of every attempt."""

    answers: list[PostAnswer] = field(default_factory=list)
    posts: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostAnswer:
        self.posts.append((url, body, dict(headers)))
        return self.answers.pop(0) if self.answers else PostAnswer(200)
