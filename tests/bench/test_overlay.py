"""The user's overlay: an entry added or replaced with the other entries kept, a backup, validation first."""

from __future__ import annotations

import pytest
import yaml

from bench.errors import ConfigError
from bench.overlay import add_entry
from bench.registry import load_registry
from bench.settings import Settings, user_models_file

USER_FILE = """# my own models
schema: llmbench.models/1
local:
  my-model:
    repo: me/my-model
    license: mit
    context: {native: 4096, served: 2048}
mock:
  my-mock:
    provider: openai
    model: m
"""


def test_the_overlay_keeps_the_users_other_entries() -> None:
    path = user_models_file()
    path.parent.mkdir(parents=True)
    path.write_text(USER_FILE, encoding="utf-8")
    settings = Settings.from_env()
    entry = {"builtin": "tiny-skills", "license": "apache-2.0", "context": {"native": 256, "served": 256},
             "derived_from": "tiny-skills", "variant": "int8",
             "quantization": {"method": "bnb-int8", "source": "llmbench"}}  # fmt: skip
    assert add_entry(settings, "tiny-skills-int8", entry) == path
    data = yaml.safe_load(path.read_text())
    assert set(data["local"]) == {"my-model", "tiny-skills-int8"} and set(data["mock"]) == {"my-mock"}
    assert data["local"]["my-model"]["repo"] == "me/my-model"
    assert path.with_name("models.yaml.bak").read_text() == USER_FILE  # the file as it was
    registry = load_registry(Settings.from_env().overlays)
    assert registry.local("tiny-skills:int8")[0] == "tiny-skills-int8"


def test_an_invalid_entry_leaves_the_overlay_untouched() -> None:
    path = user_models_file()
    path.parent.mkdir(parents=True)
    path.write_text(USER_FILE, encoding="utf-8")
    with pytest.raises(ConfigError, match="derived_from"):
        add_entry(Settings.from_env(), "bad", {"builtin": "tiny-skills", "license": "x",
                            "context": {"native": 8, "served": 8}, "derived_from": "no-such-model",
                            "variant": "int8", "quantization": {"method": "bnb-int8"}})  # fmt: skip
    assert path.read_text() == USER_FILE
    assert sorted(p.name for p in path.parent.iterdir()) == ["models.yaml"]
