"""Contract: ``list_team_ids``, every team of every organisation (status scheduler start-up)."""

from __future__ import annotations

from rooms.accounts import Organisation, Plan, Team
from signalling.store.base import Store

from .records import NOW, Backend


async def test_list_team_ids_spans_organisations_and_instances(
    store: Store, backend: Backend
) -> None:
    assert await store.list_team_ids() == []
    for org_id, team_ids in (("oa", ["t-b", "t[1]*"]), ("ob", ["t-a"])):
        await store.add_organisation(Organisation(org_id, org_id, NOW))
        for team_id in team_ids:
            team = Team(team_id, org_id, team_id, "R", Plan.STARTER, f"{team_id}@x.test", "", NOW)
            await store.add_team(team)
    expected = sorted(["t-b", "t[1]*", "t-a"])
    assert await store.list_team_ids() == expected
    other = await backend.open()  # another process's view of the same backing
    assert await other.list_team_ids() == expected
