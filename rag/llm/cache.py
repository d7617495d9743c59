"""An on-disk cache of LLM completions keyed by model, prompt and parameters.

Evaluation replays the same tickets again and again; a re-run with unchanged prompts costs nothing.
The key covers everything that changes the reply: model, endpoint, messages (so the prompt's
content hash is included), temperature and max tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Sequence

from rag.configs import LLMConfig
from rag.llm.chat import ChatModel, Completion, Message
from rag.llm.bounds import Deadline
from rag.records import Usage
from rag.store.cache import DiskCache, digest


class CachedLLM:
    """A ``ChatModel`` around another one; ``config`` gives the endpoint and the defaults the key records."""

    def __init__(self, inner: ChatModel, cache_dir: Path, config: LLMConfig) -> None:
        self.inner = inner
        self.config = config
        self.model = inner.model
        self.base_url = str(config.base_url)
        self._cache = DiskCache(cache_dir / "llm-cache.sqlite3", "completion", "body", "TEXT")
        self.hits = 0
        self.misses = 0

    def key(self, messages: Sequence[Message], max_tokens: int | None, temperature: float | None) -> str:
        payload = {
            "model": self.model,
            "base_url": self.base_url,
            "messages": list(messages),
            "max_tokens": max_tokens or self.config.max_tokens,
            "temperature": self.config.temperature if temperature is None else temperature,
        }
        return digest(json.dumps(payload, ensure_ascii=False, sort_keys=True))

    def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None, temperature: float | None = None,
                 deadline: Deadline | None = None) -> Completion:
        key = self.key(messages, max_tokens, temperature)
        stored = self._cache.get(key)
        if stored is not None:
            self.hits += 1
            body = json.loads(stored)
            # A cached reply cost nothing this time; the usage it carried is kept for reporting.
            return Completion(body["text"], Usage(body["prompt_tokens"], body["completion_tokens"]), body["model"] + " (cached)")
        completion = self.inner.complete(messages, max_tokens=max_tokens, temperature=temperature, deadline=deadline)
        self.misses += 1
        body = {"text": completion.text, "model": completion.model, "prompt_tokens": completion.usage.prompt_tokens,
                "completion_tokens": completion.usage.completion_tokens}
        self._cache.put(key, json.dumps(body, ensure_ascii=False))
        return completion

    def stream(self, messages: Sequence[Message], *, deadline: Deadline | None = None) -> Iterator[str]:
        return self.inner.stream(messages, deadline=deadline)
