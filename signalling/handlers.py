"""What each client message on ``/ws`` does, one small handler per type.

The hub parses a frame and calls ``HANDLERS[type(message)](hub, session,
message)``; rules come from rooms/ (lobby, access), errors are raised and the
hub maps them to the wire.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from rooms import access, lobby
from rooms.errors import (
    BadMessage,
    BadTransition,
    Busy,
    Conflict,
    Forbidden,
    NotFound,
    NotHost,
    VestibuleError,
)
from rooms.presence import PresenceKind, Role
from signalling import protocol as p
from signalling.session import Identity, Session

if TYPE_CHECKING:
    from signalling.hub import Hub

Handler = Callable[["Hub", Session, Any], Awaitable[None]]


async def _on_hello(hub: Hub, session: Session, msg: p.Hello) -> None:
    raise BadMessage("already said hello")


async def _on_join(hub: Hub, session: Session, msg: p.Join) -> None:
    if session.joined:
        raise BadTransition("participant", "joined", "join")
    runtime = hub.runtime_for(session)
    who = session.who
    runtime.sessions[session.pid] = session
    session.joined = True
    person = lobby.Person(who.participant, who.role, who.name, who.meeting_id, who.staff_id)
    try:
        await runtime.apply(lobby.Arrive(person), hub.clock.now())
    except VestibuleError:
        runtime.sessions.pop(session.pid, None)
        session.joined = False
        raise


async def _on_leave(hub: Hub, session: Session, msg: p.Leave) -> None:
    await hub.leave(session)


async def _on_signal(hub: Hub, session: Session, msg: p.Signal) -> None:
    runtime = hub.rooms.get(session.who.room.id)
    if runtime is None or not session.joined:
        raise Forbidden("you are not in the call")
    await runtime.relay(session, msg)


async def _on_call_state(hub: Hub, session: Session, msg: p.CallState) -> None:
    runtime = hub.rooms.get(session.who.room.id)
    if runtime is None or session.pid not in runtime.in_call:
        raise Forbidden("you are not in the call")
    kind = PresenceKind.CALL_CONNECTED if msg.state == "connected" else PresenceKind.CALL_FAILED
    hub.record(session, kind, peer=msg.peer)


def _host_command(build: Callable[[str, Any], lobby.Command]) -> Handler:
    async def handler(hub: Hub, session: Session, msg: Any) -> None:
        runtime = hub.rooms.get(session.who.room.id)
        if runtime is None or not session.joined or session.who.role is not Role.HOST:
            raise NotHost()
        await runtime.apply(build(session.pid, msg), hub.clock.now())

    return handler


async def _on_deny(hub: Hub, session: Session, msg: p.Deny) -> None:
    """Deny, and revoke the guest's credential: denied is final (DESIGN.md's
    lifecycle), so neither the link nor the rejoin secret lets them queue again."""
    runtime = hub.rooms.get(session.who.room.id)
    if runtime is None or not session.joined or session.who.role is not Role.HOST:
        raise NotHost()
    person = runtime.state.people.get(msg.participant)
    if person is not None and person.meeting_id is not None and person.role is Role.GUEST:
        # Revoke first: a guest told "denied" must not get back in by reconnecting
        # in the moment before the revocation lands (possibly through another node).
        await hub.store.replace_credential(person.meeting_id, None, hub.clock.now())
    await runtime.apply(lobby.Deny(session.pid, msg.participant), hub.clock.now())


async def _on_invite(hub: Hub, session: Session, msg: p.Invite) -> None:
    """The owner of a consulting room invites a colleague into the call in progress.

    The invitation lives with the room on this node (rooms are on one node) and
    lapses when the room empties or after INVITATION_TTL: it lets the colleague
    say hello into this room once the owner asked for them, nothing more.
    """
    runtime = hub.rooms.get(session.who.room.id)
    if runtime is None or not session.joined or session.who.role is not Role.HOST:
        raise NotHost()
    try:
        colleague = await hub.store.get_staff(msg.member)
    except NotFound:
        raise NotFound("no such colleague") from None
    if colleague.team_id != runtime.room.team_id:
        raise NotFound("no such colleague")  # other teams' ids reveal nothing
    if colleague.id == runtime.room.owner_id or runtime.room.shared:
        raise BadTransition("invitation", "already a host of this room", "invite")
    runtime.invite(colleague.id, hub.clock.now())
    body: dict[str, Any] = {"type": "invited", "member": colleague.id}
    if msg.ref is not None:
        body["ref"] = msg.ref
    await session.send(body)


async def _on_move(hub: Hub, session: Session, msg: p.Move) -> None:
    runtime = hub.rooms.get(session.who.room.id)
    if runtime is None or not session.joined or session.who.role is not Role.HOST:
        raise NotHost()
    target_room = await hub.store.find_room_by_slug(msg.room)
    if target_room is None:
        raise NotFound("no such room")
    access.check_move_target(runtime.room, target_room)
    if hub.placement is not None and await hub.placement.claim(target_room.id) is not None:
        # The target room lives on another node: moving the guest here would split it.
        raise Conflict("that room is in use on another server; try again when it is free")
    guest = runtime.sessions.get(msg.participant)
    await runtime.apply(lobby.Move(session.pid, msg.participant, target_room.slug), hub.clock.now())
    if guest is None:
        return
    runtime.sessions.pop(guest.pid, None)
    if runtime.empty:
        hub.rooms.pop(runtime.room.id, None)
    who = guest.who
    guest.who = Identity(
        who.participant,
        who.role,
        who.name,
        who.team_id,
        target_room,
        who.meeting_id,
        who.staff_id,
        who.credential_id,
        who.instructions,
    )
    guest.joined = False
    await _on_join(hub, guest, p.Join())


async def _on_mediacheck(hub: Hub, session: Session, msg: p.MediaCheckOffer) -> None:
    if hub.checks is None:
        raise Busy("media checks are not available on this server", retry_after=30)
    await hub.checks.offer(session, msg)


async def _on_ping(hub: Hub, session: Session, msg: p.Ping) -> None:
    body: dict[str, Any] = {"type": "pong", "server_time": time.time()}
    if msg.ref is not None:
        body["ref"] = msg.ref
    await session.send(body)


async def _on_pong(hub: Hub, session: Session, msg: p.Pong) -> None:
    return None


async def _on_subscribe(hub: Hub, session: Session, msg: p.Subscribe) -> None:
    raise BadMessage("subscribe belongs on /ws/dashboard")


HANDLERS: dict[type, Handler] = {
    p.Hello: _on_hello,
    p.Join: _on_join,
    p.Leave: _on_leave,
    p.Signal: _on_signal,
    p.CallState: _on_call_state,
    p.Admit: _host_command(lambda by, m: lobby.Admit(by, m.participant)),
    p.AdmitAll: _host_command(lambda by, m: lobby.AdmitAll(by)),
    p.Deny: _on_deny,
    p.PutBack: _host_command(lambda by, m: lobby.PutBack(by, m.participant)),
    p.Say: _host_command(lambda by, m: lobby.Say(by, m.text)),
    p.Move: _on_move,
    p.Invite: _on_invite,
    p.MediaCheckOffer: _on_mediacheck,
    p.Ping: _on_ping,
    p.Pong: _on_pong,
    p.Subscribe: _on_subscribe,
}

TYPE_NAMES: dict[type, str] = {
    p.Hello: "hello",
    p.Join: "join",
    p.Leave: "leave",
    p.Signal: "signal",
    p.CallState: "call.state",
    p.Admit: "admit",
    p.AdmitAll: "admit_all",
    p.Deny: "deny",
    p.PutBack: "put_back",
    p.Say: "say",
    p.Move: "move",
    p.Invite: "invite",
    p.MediaCheckOffer: "mediacheck.offer",
    p.Ping: "ping",
    p.Pong: "pong",
    p.Subscribe: "subscribe",
}
