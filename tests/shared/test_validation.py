"""One wording for pydantic's errors, wherever a model validates input."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.syncs.definitions import DefinitionInvalid, create_sync
from shared.validation import problems_of
from shared.webhooks.subscriptions import WebhookCreate, WebhookInvalid, parse


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["a", "b"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    items: list[Item] = []
    tags: dict[str, int] = {}
    either: int | str = 0
    url: str = "https://x.test"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https URL")
        return value


def _problems(data: Any, prefix: str = "") -> list[str]:
    with pytest.raises(ValidationError) as info:
        Body.model_validate(data)
    return problems_of(info.value, prefix)


def test_paths_use_dots_for_keys_and_brackets_for_positions() -> None:
    problems = _problems(
        {"items": [{"kind": "a"}, {"kind": "c", "x": 1}], "tags": {"": "n"}, "url": "http://x"}
    )
    assert problems == [
        "name: required",
        "items[1].kind: Input should be 'a' or 'b'",
        "items[1].x: unknown field",
        'tags."": Input should be a valid integer, unable to parse string as an integer',
        "url: must be an https URL",
    ]


def test_union_members_are_not_part_of_the_path_and_each_line_is_listed_once() -> None:
    problems = _problems({"name": "n", "either": [1]})
    assert problems == [
        "either: Input should be a valid integer",
        "either: Input should be a valid string",
    ]


def test_a_problem_of_the_whole_value_and_a_prefix() -> None:
    assert _problems(5) == ["body: Input should be a valid dictionary or instance of Body"]
    assert _problems({"name": ""}, "syncs[2]") == [
        "syncs[2].name: String should have at least 1 character"
    ]


def test_webhook_subscriptions_and_sync_definitions_word_problems_the_same_way() -> None:
    with pytest.raises(WebhookInvalid) as webhook:
        parse(WebhookCreate, {"events": ["run.failed", "nope"], "extra": 1})
    assert webhook.value.problems[0] == "url: required"
    assert webhook.value.problems[1].startswith("events[1]: Input should be ")
    assert webhook.value.problems[2] == "extra: unknown field"
    with pytest.raises(WebhookInvalid) as webhook:
        parse(WebhookCreate, {"url": "ftp://x.test/", "events": ["run.failed"]})
    assert webhook.value.problems == ["url: must be an https URL (or http to a loopback receiver)"]
    # The model refuses these before any session or describe call is made.
    with pytest.raises(DefinitionInvalid) as sync:
        create_sync(None, {"object": "Contact", "extra": 1}, None)  # type: ignore[arg-type]
    assert "name: required" in sync.value.problems
    assert "extra: unknown field" in sync.value.problems
