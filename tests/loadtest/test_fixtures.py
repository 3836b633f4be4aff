"""The seed file (``loadtest run --seed-file``): what it refuses before a run starts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from loadtest.fixtures import ProvisionError, SeedProvisioner


@pytest.mark.parametrize(
    "seed",
    [{}, {"hosts": [], "rooms": []}, {"hosts": [{"id": "h"}], "rooms": [{}]}, {"hosts": 3}],
)
def test_a_malformed_seed_is_refused(seed: dict[str, Any]) -> None:
    with pytest.raises(ProvisionError):
        SeedProvisioner(seed)


def test_an_unreadable_seed_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="cannot read"):
        SeedProvisioner.from_path(str(tmp_path / "missing.json"))
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ProvisionError, match="JSON object"):
        SeedProvisioner.from_path(str(tmp_path / "list.json"))


def test_each_token_is_used_once_and_rooms_are_reused_in_turn() -> None:
    seed = SeedProvisioner(
        {"hosts": [{"id": "h1"}], "rooms": [{"slug": "a", "tokens": ["t1", "t2"]}]}
    )
    assert asyncio.run(seed.rooms(3)) == ["a", "a", "a"]
    made = asyncio.run(seed.book([("a", "h1"), ("a", "h1")]))
    assert [b.token for b in made] == ["t1", "t2"]
    with pytest.raises(ProvisionError, match="too few links"):
        asyncio.run(seed.book([("a", "h1")]))
