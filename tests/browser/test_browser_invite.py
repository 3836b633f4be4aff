"""A clinician invites a colleague into their consulting room, in real Chromium."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

pytestmark = pytest.mark.browser


def logged_in(demo: dict[str, Any], devices: Any, email: str) -> BrowserContext:
    staff = next(s for s in demo["staff"] if s["email"] == email)
    context = devices.new()
    response = context.request.post(
        "/api/login", data={"email": staff["email"], "password": staff["password"]}
    )
    assert response.ok, response.text()
    return context


def test_owner_invites_a_colleague_who_then_joins(demo: dict[str, Any], devices: Any) -> None:
    members = [s for s in demo["staff"] if s.get("role") != "manager"]
    owner, colleague = members[0], members[1]
    owner_ctx = logged_in(demo, devices, owner["email"])
    me = owner_ctx.request.get("/api/me").json()["staff"]
    room = next(r["slug"] for r in demo["rooms"] if r["owner"] == me["id"])

    host = owner_ctx.new_page()
    host.goto(f"/r/{room}")
    expect(host.locator("body")).to_have_attribute("data-role", "host", timeout=20_000)

    guest_ctx = logged_in(demo, devices, colleague["email"])
    visitor = guest_ctx.new_page()
    visitor.goto(f"/r/{room}")
    expect(visitor.locator("#ended-title")).to_have_text(
        "You cannot enter this room", timeout=20_000
    )

    invite = host.locator("#invite-form")
    expect(invite).to_be_visible(timeout=10_000)
    host.select_option("#invite-member", label=colleague_name(guest_ctx))
    invite.get_by_role("button", name="Invite").click()
    expect(host.locator("#status")).to_contain_text("Invitation sent", timeout=10_000)

    visitor.reload()
    expect(visitor.locator("body")).to_have_attribute("data-role", "member", timeout=20_000)
    expect(visitor.locator("body")).to_have_attribute("data-step", "call", timeout=20_000)
    expect(host.locator("#in-call-list")).to_contain_text(colleague_name(guest_ctx), timeout=20_000)


def colleague_name(context: BrowserContext) -> str:
    return str(context.request.get("/api/me").json()["staff"]["name"])
