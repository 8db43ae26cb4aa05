"""Tokenizers for sizing prompts and for counting output tokens when a server reports no usage.

`load_tokenizer(source)` takes a `tokenizer.json` file, a model folder holding one, or a hub repo id already
in the local cache; with no source it returns `ApproxTokenizer` (ceil(chars / 4)), which says so in
`approximate` and `name` so its counts are never passed off as real ones.

Counting follows what an OpenAI-compatible server (vLLM, transformers) does with the same tokenizer:
completions prompts are encoded with special tokens (BOS where the tokenizer adds one); chat messages are
rendered with the tokenizer's chat template and encoded without adding special tokens again. Rendering
needs jinja2; without it (or without a template) `count_chat` counts the message contents only and
`chat_exact` is False.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bench.errors import ConfigError

Messages = Sequence[Mapping[str, Any]]


class TextTokenizer(Protocol):
    """What prompt building and output counting need from a tokenizer. Counts are in tokens."""

    name: str
    approximate: bool  # True: counts are estimates (chars / 4), not the model's tokenizer

    def count(self, text: str, *, special: bool = False) -> int:
        """Tokens in `text`; with `special`, plus the special tokens the tokenizer adds (e.g. BOS)."""
        ...

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every token of `text` (no special tokens added)."""
        ...

    @property
    def chat_exact(self) -> bool:
        """True when `count_chat` renders the real chat template."""
        ...

    def count_chat(self, messages: Messages) -> int:
        """Prompt tokens a server sees for these chat messages (template and generation prompt included)."""
        ...

    def render_chat(self, messages: Messages, *, add_generation_prompt: bool = True) -> str | None:
        """The prompt text the chat template makes of `messages`; None without a renderable template."""
        ...


class ApproxTokenizer:
    """Fallback without a tokenizer: one 'token' per 4 characters, rounded up; labelled approximate."""

    name = "approx:chars/4"
    approximate = True
    chat_exact = False

    def count(self, text: str, *, special: bool = False) -> int:
        """Estimated tokens: ceil(characters / 4)."""
        return math.ceil(len(text) / 4)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Pseudo-tokens of 4 characters."""
        return [(i, min(i + 4, len(text))) for i in range(0, len(text), 4)]

    def count_chat(self, messages: Messages) -> int:
        """Estimated tokens of the message contents (no template)."""
        return self.count(_join_contents(messages))

    def render_chat(self, messages: Messages, *, add_generation_prompt: bool = True) -> str | None:
        """No template to render."""
        return None


class HFTokenizer:
    """A `tokenizers` tokenizer (tokenizer.json), with the chat template from its folder when there is one."""

    approximate = False

    def __init__(
        self,
        tokenizer: Any,
        *,
        name: str,
        chat_template: str | None = None,
        special_tokens: Mapping[str, str] | None = None,
    ) -> None:
        self._tok = tokenizer
        self.name = name
        self.chat_template = chat_template
        self._special = dict(special_tokens or {})
        self._render: Callable[..., str] | None = _compile_template(chat_template) if chat_template else None

    @property
    def chat_exact(self) -> bool:
        """True when the chat template can be rendered (it exists and jinja2 is installed)."""
        return self._render is not None

    def count(self, text: str, *, special: bool = False) -> int:
        """Tokens in `text`; with `special`, plus BOS/EOS the tokenizer's post-processor adds."""
        return len(self._tok.encode(text, add_special_tokens=special).ids)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every token of `text` (no special tokens)."""
        return [tuple(span) for span in self._tok.encode(text, add_special_tokens=False).offsets]

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no special tokens)."""
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def render_chat(self, messages: Messages, *, add_generation_prompt: bool = True) -> str | None:
        """The prompt text the chat template makes of `messages`; None without a renderable template."""
        if self._render is None:
            return None
        try:
            return self._render(
                messages=list(messages), add_generation_prompt=add_generation_prompt, **self._special
            )
        except ConfigError:
            raise
        except Exception as exc:  # jinja2 errors, or a TypeError on content the template cannot join
            raise ConfigError(
                f"the chat template of {self.name} cannot render these messages: {type(exc).__name__}: {exc}",
                fix="give messages string contents with the roles the template expects",
            ) from exc

    def count_chat(self, messages: Messages) -> int:
        """Prompt tokens of the rendered chat (as vLLM counts them); contents only without a template."""
        rendered = self.render_chat(messages)
        if rendered is None:
            return self.count(_join_contents(messages))
        return self.count(rendered, special=False)


def load_tokenizer(source: str | Path | None) -> TextTokenizer:
    """A tokenizer from a tokenizer.json, a model folder or a cached hub repo id; approximate for None."""
    if source is None:
        return ApproxTokenizer()
    path = Path(source).expanduser()
    if path.is_dir():
        return _from_folder(path, name=str(source))
    if path.is_file():
        return _from_folder(path.parent, name=str(source), tokenizer_file=path)
    cached = _hub_cache_file(str(source))
    if cached is not None:
        return _from_folder(cached.parent, name=str(source), tokenizer_file=cached)
    raise ConfigError(
        f"tokenizer {str(source)!r} is neither a tokenizer.json, a folder holding one, nor a cached hub repo",
        file=str(source),
        fix="point to the model folder (e.g. the one `llmbench pull` made) or leave the tokenizer unset "
        "to size prompts approximately (chars / 4)",
    )


def _from_folder(folder: Path, *, name: str, tokenizer_file: Path | None = None) -> HFTokenizer:
    from tokenizers import Tokenizer

    file = tokenizer_file or folder / "tokenizer.json"
    if not file.is_file():
        raise ConfigError(
            f"no tokenizer.json in {folder}",
            file=str(folder),
            fix="only fast tokenizers (tokenizer.json) are supported; save one with transformers' "
            "save_pretrained",
        )
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as exc:  # the Rust side raises a bare Exception on a bad file
        raise ConfigError(f"cannot read tokenizer {file}: {exc}", file=str(file)) from exc
    template, special = _read_config(folder)
    return HFTokenizer(tok, name=name, chat_template=template, special_tokens=special)


def _read_config(folder: Path) -> tuple[str | None, dict[str, str]]:
    """Chat template and special-token strings from tokenizer_config.json / chat_template.jinja."""
    config: dict[str, Any] = {}
    config_file = folder / "tokenizer_config.json"
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {config_file}: {exc}", file=str(config_file)) from exc
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    jinja_file = folder / "chat_template.jinja"
    if not isinstance(template, str) and jinja_file.is_file():
        template = jinja_file.read_text(encoding="utf-8")
    special: dict[str, str] = {}
    for key in ("bos_token", "eos_token", "pad_token", "unk_token"):
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            special[key] = value
    return (template if isinstance(template, str) else None), special


def _hub_cache_file(repo_id: str) -> Path | None:
    """tokenizer.json of a hub repo already in the local cache (never downloads)."""
    if repo_id.count("/") != 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, "tokenizer.json")
    except ValueError:  # not a valid repo id
        return None
    return Path(found) if isinstance(found, str) else None


def _compile_template(template: str) -> Callable[..., str] | None:
    """Compile a chat template as transformers does (sandboxed, trim_blocks, lstrip_blocks)."""
    try:
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        return None

    def raise_exception(message: str) -> None:
        raise ConfigError(f"the chat template refused the messages: {message}")

    def tojson(value: Any, indent: int | None = None, **_: Any) -> str:
        return json.dumps(value, ensure_ascii=False, indent=indent)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    # Some templates (Llama 3) print today's date; the date does not change the prompt's length much.
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    compiled = env.from_string(template)
    return compiled.render


def _join_contents(messages: Messages) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages)
