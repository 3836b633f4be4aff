"""The demo organisation a newcomer can click through, and the load-test seed.

``ensure_demo`` creates the demo organisation once (a clinic-plan team with
two clinicians, its shared rooms, a custom room, meeting types and a manager)
and, on every start, a fresh set of meetings for today, three of them
joinable right now. Each start issues their links and keys (sealed under the
settings' data key, so the dashboard shows them) and returns them for the CLI
to print.

Online booking works out of the box: Dr Ada Jones works weekdays 09:00-17:00
(:data:`DEMO_ZONE`) and the team offers a "First visit" online, with an
address and instructions, so her booking page (``/book/<her room's slug>``,
in the summary) has free times. A demo database seeded before she had working
hours gets them, and the type, on its next start.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from rooms.accounts import Group, Organisation, Plan, StaffAccount, StaffRole, Team
from rooms.errors import NotFound
from rooms.hours import DayRange, make_working_hours
from rooms.meeting import Guest, Meeting, MeetingKind, MeetingType
from rooms.passwords import hash_password
from rooms.plans import default_shared_rooms, user_room_for
from rooms.room import Room, RoomKind
from rooms.schedule import create_meeting
from rooms.tokens import format_key, issue_credential
from signalling.sealing import sealer_for
from signalling.settings import Settings
from signalling.store.base import Store

DEMO_ORG = "demo-org"
DEMO_PASSWORD = "vestibule-demo"  # noqa: S105  # printed by `vestibule demo`; demo data only
CLINICIANS = (
    ("demo-ada", "ada.jones@demo.vestibule.test", "Dr Ada Jones", "GP"),
    ("demo-sam", "sam.smith@demo.vestibule.test", "Dr Sam Smith", "Physiotherapist"),
)
MANAGER = ("demo-manager", "office@demo.vestibule.test", "Practice Office")
#: the demo practice's time zone: Dr Ada Jones's working hours are in it
DEMO_ZONE = "Europe/London"
#: the meeting type Dr Ada Jones offers on her booking page
BOOKABLE_TYPE = "demo-first-visit"
BOOKABLE_ADDRESS = "Harbour Clinic, 1 Quay Street, Harbour Town"


def new_id() -> str:
    return secrets.token_hex(8)


@dataclass
class DemoInfo:
    url: str
    staff: list[dict[str, str | bool]] = field(default_factory=list)
    rooms: list[dict[str, Any]] = field(default_factory=list)
    meetings: list[dict[str, Any]] = field(default_factory=list)
    #: the public booking pages open in the demo: clinician's name and URL
    booking: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "staff": self.staff,
            "rooms": self.rooms,
            "meetings": self.meetings,
            "booking": self.booking,
        }


async def ensure_demo(store: Store, settings: Settings, now: datetime) -> DemoInfo:
    """Seed the demo organisation if missing, then today's meetings; return what to open."""
    try:
        await store.get_organisation(DEMO_ORG)
    except Exception:  # NotFound: a fresh database
        await _seed_org(store, now)
    team = (await store.list_teams(DEMO_ORG))[0]
    await _ensure_online_booking(store, team)
    rooms = await store.list_rooms(team.id)
    types = {t.id: t for t in await store.list_meeting_types(team.id)}
    consult, followup = types["demo-consult"], types["demo-followup"]
    info = DemoInfo(url=settings.base_url)
    for _, email, _, _ in CLINICIANS:
        account = await store.find_staff_by_email(email)
        admin = account is not None and account.admin
        info.staff.append(
            {
                "email": email,
                "password": DEMO_PASSWORD,
                "team": team.id,
                "role": "member",
                "admin": admin,
            }
        )
    info.staff.append(
        {
            "email": MANAGER[1],
            "password": DEMO_PASSWORD,
            "team": "",
            "role": "manager",
            "admin": False,
        }
    )
    info.rooms = [
        {"slug": r.slug, "kind": str(r.kind), "owner": r.owner_id, "name": r.name} for r in rooms
    ]
    by_owner = {r.owner_id: r for r in rooms if r.kind is RoomKind.USER}
    reception = next(r for r in rooms if r.kind is RoomKind.RECEPTION)
    hosts = {s.id: s for s in await store.list_staff(team.id)}
    ada, sam = hosts[CLINICIANS[0][0]], hosts[CLINICIANS[1][0]]
    info.booking.append(
        {"clinician": ada.name, "url": f"{settings.base_url}/book/{by_owner[ada.id].slug}"}
    )
    plan: list[tuple[StaffAccount, Room, str, str, timedelta, MeetingType]] = [
        (
            ada,
            by_owner[ada.id],
            "Alex Morgan",
            "alex.morgan@example.org",
            timedelta(minutes=2),
            consult,
        ),
        (
            sam,
            by_owner[sam.id],
            "Jordan Lee",
            "jordan.lee@example.org",
            timedelta(minutes=5),
            followup,
        ),
        (ada, reception, "Casey Patel", "casey.patel@example.org", timedelta(minutes=10), consult),
        (
            sam,
            by_owner[sam.id],
            "Robin Okafor",
            "robin.okafor@example.org",
            timedelta(hours=3),
            followup,
        ),
        (
            ada,
            by_owner[ada.id],
            "Sasha Novak",
            "sasha.novak@example.org",
            timedelta(hours=5),
            consult,
        ),
    ]
    start_base = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for host, room, name, email, offset, mtype in plan:
        meeting, _ = create_meeting(
            team,
            host,
            room,
            mtype,
            Guest(name, email),
            "Demo meeting",
            start_base + offset,
            None,
            (),
            now,
            new_id,
        )
        issued = issue_credential(
            meeting, now, new_id=new_id, before=settings.link_before, grace=settings.link_grace
        )
        if settings.data_key:  # sealed, so the dashboard shows the key (docs/decisions.md)
            issued = sealer_for(settings.data_key).seal_issued(issued)
        await store.add_meetings([meeting], [issued.credential])
        info.meetings.append(
            {
                "id": meeting.id,
                "room": room.slug,
                "host": host.id,
                "link": f"{settings.base_url}/join/{issued.link_token}",
                "token": issued.link_token,
                "guest_key": format_key(issued.guest_key),
                "start": (start_base + offset).isoformat(),
                "guest": name,
            }
        )
    return info


async def _ensure_online_booking(store: Store, team: Team) -> None:
    """Dr Ada Jones's working hours (weekdays 09:00-17:00 in DEMO_ZONE) and
    the First visit type offered online, unless she has hours already (then
    whatever was set in the demo is left alone)."""
    ada = CLINICIANS[0][0]
    if await store.get_working_hours(ada) is not None:
        return
    try:
        await store.get_meeting_type(BOOKABLE_TYPE)
    except NotFound:
        await store.add_meeting_type(
            MeetingType(
                BOOKABLE_TYPE,
                team.id,
                "First visit",
                timedelta(minutes=30),
                colour="#9333ea",
                online_bookable=True,
                kinds=frozenset({MeetingKind.VIDEO, MeetingKind.IN_PERSON}),
                address=BOOKABLE_ADDRESS,
                instructions=(
                    "Bring your medication list. For a video visit, find a quiet,"
                    " well-lit place a few minutes early."
                ),
                description="A first appointment, by video or at the clinic.",
            )
        )
    weekdays = [DayRange(day, 9 * 60, 17 * 60) for day in range(5)]
    await store.put_working_hours(
        make_working_hours(staff_id=ada, team_id=team.id, timezone=DEMO_ZONE, ranges=weekdays)
    )


async def _seed_org(store: Store, now: datetime) -> None:
    await store.add_organisation(Organisation(DEMO_ORG, "Harbour Health (demo)", now))
    team = Team(
        id="demo-team",
        org_id=DEMO_ORG,
        name="Harbour Clinic",
        reference="HC-001",
        plan=Plan.CLINIC,
        email="clinic@demo.vestibule.test",
        phone="+44 20 7946 0000",
        created_at=now,
    )
    await store.add_team(team)
    password = hash_password(DEMO_PASSWORD)
    taken: set[str] = set()
    for room in default_shared_rooms(team, new_id):
        await store.add_room(room)
        taken.add(room.slug)
    await store.add_room(
        Room(new_id(), team.id, "harbour-physio-room", "Physio Room", RoomKind.CUSTOM)
    )
    members = []
    for staff_id, email, name, speciality in CLINICIANS:
        account = StaffAccount(
            id=staff_id,
            org_id=DEMO_ORG,
            team_id=team.id,
            role=StaffRole.MEMBER,
            email=email,
            name=name,
            password_hash=password,
            title="Dr",
            speciality=speciality,
            created_at=now,
            # Dr Ada Jones administers the demo team (invites, disables, groups)
            admin=staff_id == CLINICIANS[0][0],
        )
        await store.add_staff(account)
        room = user_room_for(account, team, new_id, taken_slugs=taken)
        taken.add(room.slug)
        await store.add_room(room)
        members.append(account.id)
    await store.add_group(Group("demo-clinicians", team.id, "Clinicians", frozenset(members)))
    await store.add_staff(
        StaffAccount(
            id=MANAGER[0],
            org_id=DEMO_ORG,
            team_id=None,
            role=StaffRole.MANAGER,
            email=MANAGER[1],
            name=MANAGER[2],
            password_hash=password,
            created_at=now,
        )
    )
    await store.add_meeting_type(
        MeetingType(
            "demo-consult",
            team.id,
            "Consultation",
            timedelta(minutes=30),
            colour="#2563eb",
            instructions="Please have your medication list ready.",
        )
    )
    await store.add_meeting_type(
        MeetingType(
            "demo-followup",
            team.id,
            "Follow-up",
            timedelta(minutes=15),
            colour="#16a34a",
            instructions="Find a quiet, well-lit place.",
        )
    )


async def load_seed(store: Store, settings: Settings, now: datetime, rooms: int) -> dict[str, Any]:
    """A team of ``rooms`` clinicians, each with a consulting room and one meeting
    joinable now, for the load-test harness. Staff cannot log in (no password);
    the harness mints JWTs with the API secret it gave the server."""
    org = Organisation("load-" + new_id(), "Load test", now)
    await store.add_organisation(org)
    team = Team(new_id(), org.id, "Load team", "LOAD", Plan.CLINIC, f"{org.id}@load.test", "", now)
    await store.add_team(team)
    out: list[dict[str, str]] = []
    start = now + timedelta(minutes=1)
    for i in range(rooms):
        staff = StaffAccount(
            new_id(),
            org.id,
            team.id,
            StaffRole.MEMBER,
            f"c{i}.{org.id}@load.test",
            f"Clinician {i}",
            "!",
            created_at=now,
        )
        await store.add_staff(staff)
        room = replace(user_room_for(staff, team, new_id), slug=f"{org.id}-r{i}")
        await store.add_room(room)
        meeting = Meeting(
            new_id(),
            team.id,
            staff.id,
            room.id,
            None,
            Guest(f"Guest {i}", f"g{i}@load.test"),
            timedelta(minutes=30),
            now,
            start=start,
        )
        issued = issue_credential(
            meeting, now, new_id=new_id, before=settings.link_before, grace=settings.link_grace
        )
        await store.add_meetings([meeting], [issued.credential])
        out.append(
            {
                "slug": room.slug,
                "host_id": staff.id,
                "token": issued.link_token,
                "guest_key": issued.guest_key,
                "meeting": meeting.id,
            }
        )
    return {"team": team.id, "rooms": out}
