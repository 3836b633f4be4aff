"""The participant lifecycle: one person's path through one meeting's room.

Everything that decides a participant's state lives in :data:`TRANSITIONS`,
one table read by :func:`transition`. A move the table lacks raises
:class:`rooms.errors.BadTransition` naming the state the participant was in.

The rules the table encodes (docs/domain.md, plus what real use needs):

- ``invited --enter--> entered``: the person said hello with a valid credential.
- The media check is optional but recorded: ``entered``, ``checked`` and
  ``check_failed`` all accept ``check_ok`` / ``check_failed``, so a guest may
  retry after a failure (or re-run a passed check after changing camera).
  A guest may also run the check while already ``waiting``; the result is
  recorded (presence CHECKED) but they stay ``waiting``.
- A guest goes to ``waiting`` (event ``wait``) from ``entered``, ``checked`` or
  ``check_failed``: a failed check warns, it does not lock the patient out.
- Guests reach ``in_call`` only through ``admit`` (a host's decision) from
  ``waiting``. Staff (member, host) never wait: they use the distinct event
  ``join_as_staff`` (``entered``/``checked``/``check_failed`` -> ``in_call``).
  A distinct event, rather than "admit by themselves", keeps the table honest:
  ``admit`` from ``entered`` is illegal, so no code path can skip the queue
  for a guest by accident. :func:`transition` refuses ``join_as_staff`` for a
  guest when told the role.
- ``in_call --put_back--> waiting``: a host put them back, or the last host
  left and admitted guests return to the queue on hold.
- ``waiting``/``in_call`` --move--> ``waiting``: a host moved the guest to
  another room of the team, where they wait again.
- ``waiting --deny--> denied``; ``denied`` is terminal except ``leave`` /
  ``timeout`` (the browser closing).
- Anyone who has entered goes to ``left`` on ``leave`` or ``timeout``
  (``invited`` has nothing to leave; ``left`` has already left).
- ``left --rejoin--> entered``: the device that redeemed the credential comes
  back with its rejoin secret.
"""

from __future__ import annotations

import enum

from rooms.errors import BadTransition
from rooms.presence import Role


class ParticipantState(enum.StrEnum):
    INVITED = "invited"
    ENTERED = "entered"
    CHECKED = "checked"
    CHECK_FAILED = "check_failed"
    WAITING = "waiting"
    IN_CALL = "in_call"
    LEFT = "left"
    DENIED = "denied"


class ParticipantEvent(enum.StrEnum):
    ENTER = "enter"
    CHECK_OK = "check_ok"
    CHECK_FAILED = "check_failed"
    WAIT = "wait"
    ADMIT = "admit"
    #: staff (member or host) go straight into the call; guests never do
    JOIN_AS_STAFF = "join_as_staff"
    DENY = "deny"
    PUT_BACK = "put_back"
    #: moved by a host to another room of the team, where they wait again
    MOVE = "move"
    LEAVE = "leave"
    TIMEOUT = "timeout"
    REJOIN = "rejoin"


_S = ParticipantState
_E = ParticipantEvent

#: states from which the media check may run (and be re-run)
_CHECKABLE = (_S.ENTERED, _S.CHECKED, _S.CHECK_FAILED)
#: every state someone who has entered can be in; all of them may leave
_PRESENT = (*_CHECKABLE, _S.WAITING, _S.IN_CALL, _S.DENIED)

TRANSITIONS: dict[tuple[ParticipantState, ParticipantEvent], ParticipantState] = {
    (_S.INVITED, _E.ENTER): _S.ENTERED,
    **{(s, _E.CHECK_OK): _S.CHECKED for s in _CHECKABLE},
    **{(s, _E.CHECK_FAILED): _S.CHECK_FAILED for s in _CHECKABLE},
    # a check run from the waiting screen is recorded; the guest keeps their place
    (_S.WAITING, _E.CHECK_OK): _S.WAITING,
    (_S.WAITING, _E.CHECK_FAILED): _S.WAITING,
    **{(s, _E.WAIT): _S.WAITING for s in _CHECKABLE},
    **{(s, _E.JOIN_AS_STAFF): _S.IN_CALL for s in _CHECKABLE},
    (_S.WAITING, _E.ADMIT): _S.IN_CALL,
    (_S.WAITING, _E.DENY): _S.DENIED,
    (_S.IN_CALL, _E.PUT_BACK): _S.WAITING,
    (_S.WAITING, _E.MOVE): _S.WAITING,
    (_S.IN_CALL, _E.MOVE): _S.WAITING,
    **{(s, _E.LEAVE): _S.LEFT for s in _PRESENT},
    **{(s, _E.TIMEOUT): _S.LEFT for s in _PRESENT},
    (_S.LEFT, _E.REJOIN): _S.ENTERED,
}

#: events only staff may cause; checked by :func:`transition` when a role is given
STAFF_ONLY_EVENTS = frozenset({_E.JOIN_AS_STAFF})


def transition(
    state: ParticipantState, event: ParticipantEvent, *, role: Role | None = None
) -> ParticipantState:
    """The state after ``event`` in ``state``.

    Raises :class:`BadTransition` (naming ``state``) when the table has no such
    move, or when ``role`` is given and is a guest trying a staff-only event.
    """
    target = TRANSITIONS.get((state, event))
    if target is None or (role is Role.GUEST and event in STAFF_ONLY_EVENTS):
        raise BadTransition("participant", state.value, event.value)
    return target


def allowed_events(state: ParticipantState) -> frozenset[ParticipantEvent]:
    """Every event the table accepts in ``state`` (for UIs and tests)."""
    return frozenset(e for (s, e) in TRANSITIONS if s is state)
