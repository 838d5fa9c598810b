"""Writes ``rules/database.rules.json`` from named conditions: the security model's source.

Firebase rules have no functions, so the same condition (an open session,
the caller being its owner, a name's look-alike key ...) must be spelled out
in full wherever it applies. Spelled by hand, copies drift. Here each
condition is written once, as a Python value or function that returns the
expression text for the place it is used (how far ``newData.parent()`` must
climb differs by depth), and the tree at the bottom is emitted as the
JSON-with-comments file that Firebase deploys unchanged (``firebase deploy
--only database``) and the bundled emulator loads.

    python rules/build_rules.py           # rewrite the rules file
    python rules/build_rules.py --check   # exit 1 if the file is out of date

``tests/rules/test_rules_file.py`` fails when the committed file and this
source disagree. The look-alike table, the refused characters and the
reserved names come from ``emdash_fb/session/names.py``, so the client and
the rules judge names the same way. ``docs/DATA-MODEL.md`` is the contract
these rules enforce; the comments below end up in the rules file.

Paths in the helpers are the inside of a JavaScript string with ``{expr}``
splicing an expression in: ``S("members/{auth.uid}/role")`` is
``root.child('sessions/' + $sid + '/members/' + auth.uid + '/role')``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emdash_fb.session import approvals, attachments  # noqa: E402 - needs the path above
from emdash_fb.session.names import (  # noqa: E402
    CONFUSABLES,
    FORBIDDEN_CLASS,
    MAX_NAME,
    RESERVED_KEYS,
)

OUT = Path(__file__).resolve().with_name("database.rules.json")
# The web viewer folds and checks names as the rules do (web/app.js reads it).
NAMES_OUT = Path(__file__).resolve().parents[1] / "web" / "names.json"
MAX_QUEUED = 10  # the owner may allow 1..10 waiting messages per member
TYPING_AHEAD_MS = 10_000
MAX_TEXT = 16_000
MAX_TOOL_ID = 100  # emdash_fb.runner.agents.base.MAX_ID
PUSHID = r"/^[0-9A-Za-z_\-]{20}$/"
CODE = "/^[0-9A-HJKMNP-TV-Z]{10}$/"


class C:
    """A value with a comment printed above its key."""

    def __init__(self, comment: str, value: Any) -> None:
        self.comment = comment.strip("\n")
        self.value = value


# -- expressions -------------------------------------------------------------------


def _path(path: str) -> str:
    """``"a/{x}/b"`` -> ``'a/' + x + '/b'`` (a JS string expression)."""
    parts = re.split(r"\{([^}]+)\}", path)
    out: list[str] = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part)
        elif part:
            out.append("'" + part + "'")
    return " + ".join(out)


def R(path: str, base: str = "root") -> str:
    """The snapshot at ``path`` from the database root (``base``: root or a newData climb)."""
    return f"{base}.child({_path(path)})"


def S(path: str) -> str:
    """A path in this session, before the write."""
    return R("sessions/{$sid}/" + path)


def SV(path: str) -> str:
    return S(path) + ".val()"


def up(depth: int) -> str:
    return "newData" + ".parent()" * depth


def N(depth: int, path: str) -> str:
    """A path in this session after the whole write, from a rule ``depth`` below ``$sid``."""
    return R(path, up(depth))


def NV(depth: int, path: str) -> str:
    return N(depth, path) + ".val()"


def NR(depth: int, path: str) -> str:
    """A path from the database root after the write, from ``depth`` below ``$sid``."""
    return R(path, up(depth + 2))


def all_of(*terms: str) -> str:
    return " && ".join(terms)


def any_of(*terms: str) -> str:
    return "(" + " || ".join(f"({t})" if " " in t else t for t in terms) + ")"


def one_of(expr: str, values: tuple[str, ...]) -> str:
    return "(" + " || ".join(f"{expr} === '{v}'" for v in values) + ")"


def js(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- named conditions ---------------------------------------------------------------

SIGNED_IN = "auth != null"
RUNNER = "auth.token.runner === true"
NOT_RUNNER = "auth.token.runner !== true"
#: A closed or idle session accepts no writes except the owner's `status: 'closed'`.
OPEN = f"{SV('meta/status')} === 'open' && {SV('meta/lastActivity')} + {SV('meta/idleTimeoutMs')} > now"
OWNER = f"{SV('meta/owner')} === auth.uid"
MEMBER = f"{S('members/{auth.uid}')}.exists()"


def role_is_sender(role: str) -> str:
    return f"({role} === 'owner' || {role} === 'editor')"


SENDER = role_is_sender(SV("members/{auth.uid}/role"))


def sender_after(depth: int) -> str:
    return role_is_sender(NV(depth, "members/{auth.uid}/role"))


def joins_now(depth: int) -> str:
    """This write creates the caller's membership."""
    return f"!{MEMBER} && {N(depth, 'members/{auth.uid}')}.exists()"


#: The running turn of $mid has no live runner: the lock is gone, names another
#: message, or its lease ran out (by the server's clock).
STALLED = f"(!{S('lock')}.exists() || {SV('lock/mid')} !== $mid || {SV('lock/leaseUntil')} <= now)"
AUTHOR_OR_OWNER = f"({SV('transcript/{$mid}/uid')} === auth.uid || {OWNER})"


def stalled_cancel(depth: int) -> str:
    """A member ends the stalled running turn of $mid as cancelled in this write (its author
    or the OWNER, still a MEMBER, OPEN); the other paths of the write are checked there."""
    return all_of(
        SIGNED_IN,
        MEMBER,
        OPEN,
        AUTHOR_OR_OWNER,
        f"{SV('turns/{$mid}/state')} === 'running'",
        STALLED,
        f"{NV(depth, 'turns/{$mid}/state')} === 'cancelled'",
    )


def fold(expr: str) -> str:
    """The look-alike key of the name ``expr``: exactly ``names.name_key``."""
    out = f"{expr}.toLowerCase()"
    for old, new in CONFUSABLES:
        out += f".replace({js(old)}, {js(new)})"
    return out


NAME_OK = all_of(
    "newData.isString()",
    "newData.val().length >= 1",
    f"newData.val().length <= {MAX_NAME}",
    f"!newData.val().matches(/[{FORBIDDEN_CLASS}]/)",
    "!newData.val().beginsWith(' ')",
    "!newData.val().endsWith(' ')",
    "!newData.val().contains('  ')",
)
NOT_RESERVED = all_of(*(f"$key !== {js(k)}" for k in sorted(RESERVED_KEYS)))


UNKEYABLE = "/[,#$\\[\\]\\/]/"  # in an address or domain, no allowance key can stand for it
EMAIL_ALLOW = "allow/email/{auth.token.email.toLowerCase().replace('.', ',')}"
DOMAIN_ALLOW = "allow/domain/{newData.child('ownerDomain').val().replace('.', ',')}"
CODE_OWNER = "sessions/{root.child('invites/' + $code + '/sid').val()}/meta/owner"
LAST_KICKED = "kicked/{newData.parent().child('lastKicked').val()}"
ITEM_AUTHOR_NAME = "members/{newData.parent().child('uid').val()}/name"
WORK_NEW_ITEM = "sessions/{newData.child('sid').val()}/queue/{$mid}"
WORK_OLD_ITEM = "sessions/{data.child('sid').val()}/queue/{$mid}"
WORK_OLD_TURN = "sessions/{data.child('sid').val()}/turns/{$mid}"


def allowed_owner() -> str:
    """The caller may own sessions: on the allowlist by uid, verified email or email domain.

    Evaluated at meta (the new meta is ``newData``), whose ``ownerDomain``
    names the domain to look up: rules can't split an address.
    """
    return any_of(
        f"{R('allow/uid/{auth.uid}')}.exists()",
        all_of(
            "auth.token.email_verified === true",
            any_of(
                # An address with a character keys can't hold is on no email allowance
                # (the lookup would be an error, which denies the domain branch too), nor
                # one with a comma, which would read as a dot: '"a,b"@x' is not '"a.b"@x'.
                all_of(f"!auth.token.email.matches({UNKEYABLE})", R(EMAIL_ALLOW) + ".exists()"),
                all_of(
                    "newData.child('ownerDomain').isString()",
                    f"!newData.child('ownerDomain').val().matches({UNKEYABLE})",
                    R(DOMAIN_ALLOW) + ".exists()",
                ),
            ),
        ),
    )


def slot_ok(value: str, limit: str) -> str:
    """``value`` is one of ``s0 .. s<limit-1>``, spelled out (rules can't parse numbers)."""
    terms = [f"{value} === 's0'"]
    terms += [f"({value} === 's{i}' && {limit} > {i})" for i in range(1, MAX_QUEUED)]
    return "(" + " || ".join(terms) + ")"


NOW = {".validate": "newData.val() === now"}


def close_nulls() -> str:
    """OWNER and OPEN, or nulled by the owner in the write that closes the session."""
    return (
        f"{SIGNED_IN} && {OWNER} && (({OPEN}) || (!newData.exists() && "
        f"{SV('meta/status')} === 'open' && newData.parent().child('status').val() === 'closed'))"
    )


# -- the tree ----------------------------------------------------------------------

ALLOW = C(
    """
Who may own sessions, and so make a runner work: written only with an admin
credential (`emdash-fb admin allow|revoke`); nothing here grants a client
write. Keys: uid/<uid>, email/<address>, domain/<domain>, lower case, with
'.' written as ','. Runners read it before they claim; a user may read their
own uid entry.
""",
    {
        ".read": f"{SIGNED_IN} && {RUNNER}",
        "uid": {"$uid": {".read": f"{SIGNED_IN} && auth.uid === $uid"}},
    },
)

INVITE_SESSION = "sessions/{newData.child('sid').val()}/meta/"
INVITES = C(
    """
Exact-code lookup by any signed-in user; /invites itself has no .read, so
codes cannot be listed. An invite is never deleted: revoke, rotate, close and
kick mark it `revokedAt`, so a code that was ever registered can never be
registered again, by anyone (a tombstone).
""",
    {
        "$code": {
            ".read": SIGNED_IN,
            ".write": C(
                """
Create (share, rotate, kick): a code never used before, for the owner of the
session named by `sid`, in the same write that points that session's
meta/inviteCode (and inviteExpiresAt) at this code.
""",
                all_of(
                    SIGNED_IN,
                    "!data.exists()",
                    NOT_RUNNER,
                    "newData.child('sid').isString()",
                    f"{R(INVITE_SESSION + 'owner', 'newData.parent().parent()')}.val() === auth.uid",
                    f"{R(INVITE_SESSION + 'inviteCode', 'newData.parent().parent()')}.val() === $code",
                    f"{R(INVITE_SESSION + 'inviteExpiresAt', 'newData.parent().parent()')}.val() === newData.child('expiresAt').val()",
                ),
            ),
            ".validate": C(
                "Codes are 10 characters of upper-case Crockford base32.",
                f"$code.matches({CODE}) && newData.hasChildren(['sid', 'by', 'createdAt', 'expiresAt', 'role'])",
            ),
            "sid": {".validate": f"newData.isString() && newData.val().matches({PUSHID})"},
            "by": {".validate": "newData.val() === auth.uid"},
            "createdAt": NOW,
            "expiresAt": C(
                "An invite must expire: in the future, at most 30 days ahead.",
                {
                    ".validate": "newData.isNumber() && newData.val() > now && newData.val() <= now + 2592000000"
                },
            ),
            "role": C(
                """
The role a first-time joiner gets with this code; the owner of the invite's
session may change it while the invite is live.
""",
                {
                    ".write": f"{SIGNED_IN} && data.exists() && !{R('invites/{$code}/revokedAt')}.exists() && {R(CODE_OWNER)}.val() === auth.uid",
                    ".validate": "newData.val() === 'editor' || newData.val() === 'viewer'",
                },
            ),
            "revokedAt": C(
                """
Revoke, rotate, kick, close: the owner of the invite's session, once, at any
time (close must work on an idle session).
""",
                {
                    ".write": f"{SIGNED_IN} && !data.exists() && {R(CODE_OWNER)}.val() === auth.uid",
                    ".validate": "newData.val() === now",
                },
            ),
            "$other": {".validate": False},
        }
    },
)


# -- sessions/$sid --------------------------------------------------------------------


def meta_rules() -> dict[str, Any]:
    d = 2  # a meta field is two levels below sessions/$sid
    return {
        ".write": C(
            """
Share creates meta whole: a signed-in end user on the allowlist, owner =
caller, status open, one member, together with the caller's own
members/<uid> record with role 'owner'. Afterwards meta is only ever
written field by field (rules below).
""",
            all_of(
                SIGNED_IN,
                "!data.exists()",
                NOT_RUNNER,
                f"$sid.matches({PUSHID})",
                "newData.child('owner').val() === auth.uid",
                "newData.child('status').val() === 'open'",
                "newData.child('memberCount').val() === 1",
                f"{NV(1, 'members/{auth.uid}/role')} === 'owner'",
                allowed_owner(),
            ),
        ),
        ".validate": "newData.hasChildren(['owner', 'title', 'createdAt', 'status', 'mode', 'maxMembers', 'maxQueued', 'memberCount', 'lastActivity', 'idleTimeoutMs'])",
        "owner": C(
            "owner, ownerEmail, ownerDomain, title, createdAt, maxMembers, idleTimeoutMs: set at share, never changed (no grant but the create above).",
            {".validate": "newData.isString() && newData.val() === auth.uid"},
        ),
        "ownerEmail": C(
            "The owner's verified address in lower case, so a runner can check an email or domain allowance.",
            {
                ".validate": "auth.token.email_verified === true && newData.val() === auth.token.email.toLowerCase()"
            },
        ),
        "ownerDomain": C(
            "The domain of ownerEmail (the rules' domain allowance looks it up: rules can't split an address).",
            {
                ".validate": "newData.isString() && newData.val() === newData.val().toLowerCase() && auth.token.email_verified === true && auth.token.email.toLowerCase().endsWith('@' + newData.val())"
            },
        ),
        "title": {".validate": "newData.isString() && newData.val().length <= 120"},
        "createdAt": NOW,
        "maxMembers": {
            ".validate": "newData.isNumber() && newData.val() >= 2 && newData.val() <= 50 && newData.val() % 1 === 0"
        },
        "idleTimeoutMs": {".validate": "newData.isNumber() && newData.val() > 0"},
        "status": C(
            "Close: the owner only, even when the session is idle (so the owner's client can record an idle close). Never reopened.",
            {
                ".write": f"{SIGNED_IN} && {OWNER} && newData.val() === 'closed'",
                ".validate": "newData.val() === 'open' || newData.val() === 'closed'",
            },
        ),
        "mode": C(
            "Set mode: owner or editor, OPEN.",
            {
                ".write": f"{SIGNED_IN} && {SENDER} && {OPEN}",
                ".validate": "newData.val() === 'code' || newData.val() === 'plan'",
            },
        ),
        "maxQueued": C(
            f"How many messages each member may have waiting at once (1..{MAX_QUEUED}): set at share; the OWNER may change it, OPEN.",
            {
                ".write": f"{SIGNED_IN} && {OWNER} && {OPEN}",
                ".validate": f"newData.isNumber() && newData.val() >= 1 && newData.val() <= {MAX_QUEUED} && newData.val() % 1 === 0",
            },
        ),
        "inviteCode": C(
            "Rotate / revoke / kick: OWNER and OPEN. Close: the owner may also null it in the very write that sets status 'closed', idle or not.",
            {
                ".write": close_nulls(),
                ".validate": C(
                    "A code must name an invite of this session in the new data (the invite's own rule makes sure it is new and created in this write).",
                    f"newData.isString() && {NR(d, 'invites/{newData.val()}/sid')}.val() === $sid",
                ),
            },
        ),
        "inviteExpiresAt": C(
            "As inviteCode: OWNER and OPEN, or nulled by the owner's close.",
            {".write": close_nulls(), ".validate": "newData.isNumber()"},
        ),
        "memberCount": C(
            """
Moves by exactly one, OPEN, together with a membership change in the same
write:
 +1 join:  the caller's own membership is created;
 -1 leave: the caller's own membership is removed;
 -1 kick:  OWNER, and meta/lastKicked names the uid whose kicked/<uid>
           record this write creates (the kicked record in turn needs that
           membership removed).
""",
            {
                ".write": all_of(
                    SIGNED_IN,
                    OPEN,
                    any_of(
                        f"newData.val() === data.val() + 1 && {joins_now(d)}",
                        f"newData.val() === data.val() - 1 && {MEMBER} && !{N(d, 'members/{auth.uid}')}.exists()",
                        f"newData.val() === data.val() - 1 && {OWNER} && newData.parent().child('lastKicked').isString() && !{S(LAST_KICKED)}.exists() && {N(d, LAST_KICKED)}.exists()",
                    ),
                ),
                ".validate": C(
                    "Never above the limit (nor below the owner).",
                    "newData.isNumber() && newData.val() >= 1 && newData.val() <= newData.parent().child('maxMembers').val()",
                ),
            },
        ),
        "lastKicked": C(
            "Kick: OWNER, OPEN, naming the uid whose kicked/<uid> record this write creates.",
            {
                ".write": f"{SIGNED_IN} && {OWNER} && {OPEN} && newData.isString() && !{S('kicked/{newData.val()}')}.exists() && {N(d, 'kicked/{newData.val()}')}.exists()",
                ".validate": C(
                    "Always names a kicked uid (so it can't be set at share).",
                    f"newData.isString() && {N(d, 'kicked/{newData.val()}')}.exists()",
                ),
            },
        ),
        "lastMessage": C(
            "Send: names the message this write creates (so lastActivity can tell a send from a bare write); a SENDER, OPEN.",
            {
                ".write": f"{SIGNED_IN} && {sender_after(d)} && {OPEN}",
                ".validate": f"newData.isString() && newData.val().matches({PUSHID}) && !{S('transcript/{newData.val()}')}.exists() && {NV(d, 'transcript/{newData.val()}/uid')} === auth.uid",
            },
        ),
        "policy": C(
            f"""
Approval policy: the OWNER, OPEN. approvers: who answers the agent's tool
requests ('owner', 'editors': the owner or an editor, 'author': the owner or
the message's author); allow: the tools every message may use without asking,
comma-separated (absent: the read-only tools); timeoutS: how long a request
waits ({approvals.MIN_TIMEOUT_S}..{approvals.MAX_TIMEOUT_S} s) before it is a deny.
""",
            {
                ".write": f"{SIGNED_IN} && {OWNER} && {OPEN}",
                ".validate": "newData.hasChildren(['approvers'])",
                "approvers": {".validate": one_of("newData.val()", approvals.APPROVERS)},
                "allow": {
                    ".validate": f"newData.isString() && newData.val().length <= {approvals.MAX_ALLOW_CHARS} && newData.val().matches(/^({approvals.TOOL_NAME}(,{approvals.TOOL_NAME})*)?$/)"
                },
                "timeoutS": {
                    ".validate": f"newData.isNumber() && newData.val() >= {approvals.MIN_TIMEOUT_S} && newData.val() <= {approvals.MAX_TIMEOUT_S} && newData.val() % 1 === 0"
                },
                "$other": {".validate": False},
            },
        ),
        "lastActivity": C(
            """
Only writes that are activity, OPEN: a join (the caller's membership is
created in this write), a send (meta/lastMessage moves to the message this
write creates) and the runner. An idle session stays idle: the check reads
the data before the write.
""",
            {
                ".write": all_of(
                    SIGNED_IN,
                    OPEN,
                    any_of(
                        RUNNER,
                        joins_now(d),
                        f"{SENDER} && newData.parent().child('lastMessage').val() !== data.parent().child('lastMessage').val()",
                    ),
                ),
                ".validate": "newData.val() === now",
            },
        ),
        "$other": {".validate": False},
    }


def members_rules() -> dict[str, Any]:
    d = 2  # members/$uid
    invite = "invites/{newData.child('via').val()}"
    share = all_of(
        "$uid === auth.uid",
        "!data.exists()",
        NOT_RUNNER,
        f"!{S('meta')}.exists()",
        f"{NV(d, 'meta/owner')} === auth.uid",
        "newData.child('role').val() === 'owner'",
        "!newData.hasChild('via')",
    )
    join = all_of(
        "$uid === auth.uid",
        "!data.exists()",
        NOT_RUNNER,
        OPEN,
        f"!{S('kicked/{$uid}')}.exists()",
        "newData.child('via').isString()",
        f"newData.child('via').val() === {SV('meta/inviteCode')}",
        f"{R(invite + '/sid')}.val() === $sid",
        f"{R(invite + '/expiresAt')}.val() > now",
        f"!{R(invite + '/revokedAt')}.exists()",
        f"{NV(d, 'meta/memberCount')} === {SV('meta/memberCount')} + 1",
    )
    leave = all_of(
        "$uid === auth.uid",
        "data.exists()",
        "!newData.exists()",
        "data.child('role').val() !== 'owner'",
        OPEN,
        f"{NV(d, 'meta/memberCount')} === {SV('meta/memberCount')} - 1",
    )
    kick = all_of(
        "$uid !== auth.uid",
        "data.exists()",
        "!newData.exists()",
        OWNER,
        OPEN,
        f"{N(d, 'kicked/{$uid}')}.exists()",
        f"{NV(d, 'meta/memberCount')} === {SV('meta/memberCount')} - 1",
    )
    return {
        "$uid": {
            ".write": C(
                """
Four operations write a whole member record:
 share: the caller's own record, role 'owner', no `via`, created with this
        session's meta (meta's rule checks the rest);
 join:  the caller's own record, OPEN, not kicked, `via` = the session's
        current invite code whose invite is for this session, unexpired and
        not revoked, memberCount + 1 (the role is checked below);
 leave: the caller's own record removed, not the owner's, OPEN,
        memberCount - 1;
 kick:  OWNER removes another member, OPEN, creating kicked/<uid>,
        memberCount - 1.
Runners never hold a membership.
""",
                f"{SIGNED_IN} && " + any_of(share, join, leave, kick),
            ),
            ".validate": "newData.hasChildren(['name', 'role', 'joinedAt'])",
            "name": C(
                """
A display name that identifies: no control, format or invisible characters,
no leading, trailing or doubled spaces, and claimed by this uid under its
look-alike key in names/ (so no two members' names look the same). Rename:
the member themself, OPEN, claiming the new name in the same write (the old
claim stays theirs: the history shows it).
""",
                {
                    ".write": f"{SIGNED_IN} && $uid === auth.uid && data.exists() && {OPEN}",
                    ".validate": all_of(
                        NAME_OK, f"{NV(3, 'names/{' + fold('newData.val()') + '}')} === $uid"
                    ),
                },
            ),
            "role": C(
                """
Set role: OWNER, OPEN, on an existing member other than themself. The role
is always the session's owner's 'owner', or the uid's sticky role in roles/
after the write: a joiner gets the role remembered from an earlier
membership, or the invite's role the first time; leaving and rejoining never
changes it.
""",
                {
                    ".write": f"{SIGNED_IN} && $uid !== auth.uid && data.exists() && {OWNER} && {OPEN}",
                    ".validate": any_of(
                        f"newData.val() === 'owner' && {NV(3, 'meta/owner')} === $uid",
                        f"(newData.val() === 'editor' || newData.val() === 'viewer') && newData.val() === {NV(3, 'roles/{$uid}')}",
                    ),
                },
            ),
            "joinedAt": NOW,
            "via": {".validate": "newData.isString()"},
            "$other": {".validate": False},
        }
    }


def names_rules() -> dict[str, Any]:
    return C(
        """
Name claims: names/<look-alike key of a name> = the uid that holds it, for
good (a name stays bound to whoever used it in this session, also after they
leave or are kicked, because the history shows it). Claimed by the caller for
their own member name in the write that creates (or renames) the membership;
reserved names can't be claimed. Any signed-in user may look up one key
(a joiner learns why a join was refused); nobody can list them.
""",
        {
            "$key": {
                ".read": SIGNED_IN,
                ".write": f"{SIGNED_IN} && {NOT_RUNNER} && (!data.exists() || data.val() === auth.uid) && newData.val() === auth.uid && {fold(NV(2, 'members/{auth.uid}/name'))} === $key",
                ".validate": f"newData.isString() && {NOT_RESERVED}",
            }
        },
    )


def roles_rules() -> dict[str, Any]:
    via_role = R("invites/{" + NV(2, "members/{$uid}/via") + "}/role") + ".val()"
    return C(
        """
Sticky roles: roles/<uid> = the role that uid has whenever it is a member.
Created at the first join as the role of the invite used (or viewer, which
a joiner may always choose); changed only by
the OWNER (set role), OPEN; never deleted, so leaving and rejoining can't
raise a role. The uid may read its own (to rejoin with it).
""",
        {
            "$uid": {
                ".read": f"{SIGNED_IN} && auth.uid === $uid",
                ".write": f"{SIGNED_IN} && "
                + any_of(
                    all_of(
                        "$uid === auth.uid",
                        "!data.exists()",
                        NOT_RUNNER,
                        joins_now(2),
                        # the invite's role, or less: anyone may join as a viewer
                        # (the web page does unless its link asks for the invite's role)
                        f"(newData.val() === {via_role} || newData.val() === 'viewer')",
                    ),
                    all_of("$uid !== auth.uid", "data.exists()", OWNER, OPEN),
                ),
                ".validate": C(
                    "A member's role and their sticky role move together.",
                    f"(newData.val() === 'editor' || newData.val() === 'viewer') && (!{N(2, 'members/{$uid}')}.exists() || {NV(2, 'members/{$uid}/role')} === newData.val())",
                ),
            }
        },
    )


def kicked_rules() -> dict[str, Any]:
    return {
        "$uid": {
            ".read": C(
                "The kicked user may read their own record (their session stream is cancelled).",
                f"{SIGNED_IN} && auth.uid === $uid",
            ),
            ".write": C(
                """
Kick: OWNER, OPEN, not themself, once, removing that uid's membership in the
same write, and replacing or revoking the invite they knew (so another
account can't come back through it).
""",
                all_of(
                    SIGNED_IN,
                    "$uid !== auth.uid",
                    "!data.exists()",
                    OWNER,
                    OPEN,
                    f"{S('members/{$uid}')}.exists()",
                    f"!{N(2, 'members/{$uid}')}.exists()",
                    any_of(
                        f"!{S('meta/inviteCode')}.exists()",
                        f"{NV(2, 'meta/inviteCode')} !== {SV('meta/inviteCode')}",
                    ),
                ),
            ),
            ".validate": "newData.hasChildren(['by', 'at'])",
            "by": {".validate": "newData.val() === auth.uid"},
            "at": NOW,
            "$other": {".validate": False},
        }
    }


def presence_rules() -> dict[str, Any]:
    return {
        "$uid": {
            ".write": C(
                """
A MEMBER writes or deletes only their own presence, OPEN; the OWNER may also
delete the presence of a uid that is not (or, in this write, stops being) a
member.
""",
                f"{SIGNED_IN} && {OPEN} && "
                + any_of(
                    f"$uid === auth.uid && {MEMBER}",
                    f"!newData.exists() && {OWNER} && !{N(2, 'members/{$uid}')}.exists()",
                ),
            ),
            ".validate": "newData.hasChildren(['lastSeen'])",
            "lastSeen": NOW,
            "typingUntil": C(
                f"At most {TYPING_AHEAD_MS // 1000} s ahead: nobody is 'typing...' for ever.",
                {".validate": f"newData.isNumber() && newData.val() <= now + {TYPING_AHEAD_MS}"},
            ),
            "$other": {".validate": False},
        }
    }


def queue_rules() -> dict[str, Any]:
    d = 2  # queue/$mid
    slot_of_item = "slots/{newData.child('uid').val()}/{newData.child('slot').val()}"
    old_slot = "slots/{data.child('uid').val()}/{data.child('slot').val()}"
    send = all_of(
        "!data.exists()",
        f"$mid.matches({PUSHID})",
        SENDER,
        OPEN,
        "newData.child('uid').val() === auth.uid",
        "newData.child('state').val() === 'queued'",
        f"!{S('transcript/{$mid}')}.exists()",
        f"{NV(d, 'transcript/{$mid}/role')} === 'user'",
        f"{NV(d, 'transcript/{$mid}/text')} === newData.child('text').val()",
        f"{NR(d, 'work/{$mid}/sid')}.val() === $sid",
        f"!{S(slot_of_item)}.exists()",
        f"{NV(d, slot_of_item)} === $mid",
    )
    cancel = all_of(
        "data.exists()",
        "!newData.exists()",
        "data.child('state').val() === 'queued'",
        MEMBER,
        f"(data.child('uid').val() === auth.uid || {OWNER})",
        OPEN,
        f"{NV(d, 'transcript/{$mid}/state')} === 'cancelled'",
        f"!{NR(d, 'work/{$mid}')}.exists()",
        f"!{N(d, old_slot)}.exists()",
    )
    finish = all_of(
        RUNNER,
        "data.exists()",
        "!newData.exists()",
        f"{SV('lock/runner')} === auth.uid",
        f"{SV('lock/mid')} === $mid",
        OPEN,
        f"!{N(d, old_slot)}.exists()",
    )
    stalled = all_of(
        "data.exists()",
        "!newData.exists()",
        "data.child('state').val() === 'running'",
        stalled_cancel(d),
        f"!{N(d, old_slot)}.exists()",
        f"!{NR(d, 'work/{$mid}')}.exists()",
    )
    return {
        ".indexOn": ["createdAt"],
        "$mid": {
            ".write": C(
                """
send:   a SENDER, OPEN, creates the item (fresh push id, never used for a
        message before) with their own uid and state 'queued', together with
        transcript/<mid> (role 'user', same text), work/<mid> for this session
        and its slot (slots/<uid>/<slot> = <mid>, a slot that was free);
cancel: its author or the OWNER, still a MEMBER, OPEN, deletes it while
        state is 'queued', in the same write that sets transcript/<mid>/state
        'cancelled', deletes work/<mid> and frees its slot;
finish: the RUNNER holding the lock for it deletes it and frees its slot, OPEN;
stalled cancel: its author or the OWNER deletes it while 'running' when no
        runner holds the lease (see turns/<mid>/state).
""",
                f"{SIGNED_IN} && " + any_of(send, cancel, finish, stalled),
            ),
            ".validate": "newData.hasChildren(['uid', 'name', 'text', 'createdAt', 'state', 'slot'])",
            "uid": {".validate": "newData.isString()"},
            "name": C(
                "The sender's display name is their member name (no impersonation by name).",
                {".validate": f"newData.isString() && newData.val() === {SV(ITEM_AUTHOR_NAME)}"},
            ),
            "text": {
                ".validate": f"newData.isString() && newData.val().length >= 1 && newData.val().length <= {MAX_TEXT}"
            },
            "createdAt": NOW,
            "slot": C(
                "One of the sender's meta/maxQueued waiting slots (s0, s1, ...).",
                {
                    ".validate": "newData.isString() && "
                    + slot_ok("newData.val()", SV("meta/maxQueued"))
                },
            ),
            "state": {
                ".write": C(
                    "Start turn (running) or hand back (queued): the RUNNER holding the lock for this item, OPEN.",
                    f"{SIGNED_IN} && {RUNNER} && data.exists() && {SV('lock/runner')} === auth.uid && {SV('lock/mid')} === $mid && {OPEN}",
                ),
                ".validate": "newData.val() === 'queued' || newData.val() === 'running'",
            },
            "$other": {".validate": False},
        },
    }


def slots_rules() -> dict[str, Any]:
    return C(
        """
Fair use: slots/<uid>/<slot> = the id of that member's message waiting in
that slot. A send takes a free slot (the queue rule checks it is one of the
owner's meta/maxQueued), so nobody has more than that many messages waiting.
A slot is freed when its queue item goes, in the same write (cancel, finish),
or afterwards by a member or runner if its item is gone.
""",
        {
            "$uid": {
                "$slot": {
                    ".write": f"{SIGNED_IN} && "
                    + any_of(
                        all_of(
                            "$uid === auth.uid",
                            "!data.exists()",
                            f"{NV(3, 'queue/{newData.val()}/slot')} === $slot",
                            f"{NV(3, 'queue/{newData.val()}/uid')} === auth.uid",
                            f"!{S('queue/{newData.val()}')}.exists()",
                        ),
                        all_of(
                            "data.exists()",
                            "!newData.exists()",
                            f"!{N(3, 'queue/{data.val()}')}.exists()",
                            f"({RUNNER} || {MEMBER})",
                        ),
                    ),
                    ".validate": f"newData.isString() && newData.val().matches({PUSHID})",
                }
            }
        },
    )


def messages_rules() -> dict[str, Any]:
    d = 2
    user = all_of(
        "!data.exists()",
        f"$mid.matches({PUSHID})",
        SENDER,
        OPEN,
        "newData.child('role').val() === 'user'",
        "newData.child('uid').val() === auth.uid",
        "!newData.hasChild('state')",
        f"!{S('queue/{$mid}')}.exists()",
        f"{NV(d, 'queue/{$mid}/uid')} === auth.uid",
    )
    reply = all_of(
        RUNNER,
        r"$mid.matches(/^[0-9A-Za-z_\-]{20}~a$/)",
        f"{SV('lock/runner')} === auth.uid",
        f"{SV('lock/mid')} + '~a' === $mid",
        OPEN,
    )
    return {
        ".indexOn": ["at"],
        "$mid": {
            ".write": C(
                """
User message (send): a SENDER, OPEN, creates transcript/<pushid> with role
'user', their own uid and no state, with queue/<mid> created in the same
write (the queue rule checks the text, the slot and work/<mid>).
Assistant reply (finish turn): only the RUNNER holding the lock for <mid>,
OPEN, at the key '<mid>~a'.
""",
                f"{SIGNED_IN} && " + any_of(user, reply),
            ),
            ".validate": C(
                """
role 'user' lives at a push-id key, never with replyTo, and has text; role
'assistant' lives at '<replyTo>~a' and its text is the turn's chunks
(streamed once, not written again). state: 'cancelled' on a user message;
'failed' or 'cancelled' on a reply whose turn ended so.
""",
                f"newData.hasChildren(['role', 'uid', 'name', 'at']) && ((newData.child('role').val() === 'user' && newData.hasChild('text') && $mid.matches({PUSHID}) && !newData.hasChild('replyTo')) || (newData.child('role').val() === 'assistant' && newData.child('replyTo').val() + '~a' === $mid && (!newData.hasChild('state') || newData.child('state').val() === 'failed' || newData.child('state').val() === 'cancelled')))",
            ),
            "role": {".validate": "newData.val() === 'user' || newData.val() === 'assistant'"},
            "uid": C(
                "The writer's own uid: the sender, or the runner's id.",
                {".validate": "newData.val() === auth.uid"},
            ),
            "name": {
                ".validate": f"newData.isString() && newData.val().length >= 1 && newData.val().length <= {MAX_NAME} && (newData.parent().child('role').val() === 'assistant' || newData.val() === {SV('members/{auth.uid}/name')})"
            },
            "text": C(
                f"User text 1..{MAX_TEXT} characters; a reply may be any length.",
                {
                    ".validate": f"newData.isString() && (newData.parent().child('role').val() === 'assistant' || (newData.val().length >= 1 && newData.val().length <= {MAX_TEXT}))"
                },
            ),
            "at": NOW,
            "state": {
                ".write": C(
                    """
Cancel queued: its author or the OWNER, still a MEMBER, OPEN, while
queue/<mid>/state is 'queued', deleting queue/<mid> in the same write; or a
stalled cancel (see turns/<mid>/state).
""",
                    "("
                    + all_of(
                        SIGNED_IN,
                        "!data.exists()",
                        "newData.val() === 'cancelled'",
                        MEMBER,
                        f"{SV('queue/{$mid}/state')} === 'queued'",
                        f"({SV('queue/{$mid}/uid')} === auth.uid || {OWNER})",
                        OPEN,
                        f"!{N(3, 'queue/{$mid}')}.exists()",
                    )
                    + ") || ("
                    + all_of(
                        "!data.exists()",
                        "newData.val() === 'cancelled'",
                        stalled_cancel(3),
                        f"!{N(3, 'queue/{$mid}')}.exists()",
                    )
                    + ")",
                ),
                ".validate": "newData.val() === 'cancelled' || (newData.val() === 'failed' && newData.parent().child('role').val() === 'assistant')",
            },
            "replyTo": {".validate": "newData.isString()"},
            "attachments": C(
                f"""
What everyone sees of the files sent with a user message (at most
{attachments.MAX_FILES}: a0..a{attachments.MAX_FILES - 1}), written with it; each names a data record
attachments/<sid>/<mid>/<key> created in the same write with the same name,
type and size.
""",
                {
                    ".validate": "newData.parent().child('role').val() === 'user'",
                    "$key": {
                        ".validate": all_of(
                            ATTACHMENT_KEY,
                            "newData.hasChildren(['name', 'type', 'size'])",
                            *(
                                f"newData.child('{f}').val() === {R('attachments/{$sid}/{$mid}/{$key}/' + f, up(6))}.val()"
                                for f in ("name", "type", "size")
                            ),
                        ),
                        **attachment_fields(),
                    },
                },
            ),
            "$other": {".validate": False},
        },
    }


ATTACHMENT_KEY = f"$key.matches(/^a[0-{attachments.MAX_FILES - 1}]$/)"


def attachment_fields() -> dict[str, Any]:
    return {
        "name": {
            ".validate": f"newData.isString() && newData.val().length >= 1 && newData.val().length <= {attachments.MAX_FILE_NAME} && !newData.val().contains('/')"
        },
        "type": {".validate": one_of("newData.val()", attachments.TYPES)},
        "size": {
            ".validate": f"newData.isNumber() && newData.val() >= 1 && newData.val() <= {attachments.MAX_BYTES} && newData.val() % 1 === 0"
        },
        "$other": {".validate": False},
    }


ATTACHMENT_DATA = C(
    f"""
The files sent with messages, outside the session tree so that following a
session never downloads them: attachments/<sid>/<mid>/<key> = {{name, type,
size, data (base64, at most {attachments.MAX_BYTES} bytes of file)}}. Members of the session
and runners read them. Created once, by the message's author, in the write
that sends the message (whose metadata must match; see
transcript/<mid>/attachments). Never changed.
""",
    {
        "$sid": {
            ".read": f"{SIGNED_IN} && ({R('sessions/{$sid}/members/{auth.uid}')}.exists() || {RUNNER})",
            "$mid": {
                "$key": {
                    ".write": all_of(
                        SIGNED_IN,
                        NOT_RUNNER,
                        "!data.exists()",
                        ATTACHMENT_KEY,
                        f"!{R('sessions/{$sid}/transcript/{$mid}')}.exists()",
                        f"{R('sessions/{$sid}/transcript/{$mid}/uid', up(4))}.val() === auth.uid",
                        f"{R('sessions/{$sid}/transcript/{$mid}/attachments/{$key}', up(4))}.exists()",
                    ),
                    ".validate": C(
                        "The data is base64 of exactly `size` bytes (4 characters per 3 bytes, rounded up).",
                        all_of(
                            "newData.hasChildren(['name', 'type', 'size', 'data'])",
                            f"newData.child('data').isString() && newData.child('data').val().length <= {attachments.MAX_DATA}",
                            "newData.child('size').val() * 4 <= newData.child('data').val().length * 3",
                            "newData.child('size').val() * 4 > newData.child('data').val().length * 3 - 12",
                        ),
                    ),
                    **attachment_fields(),
                    "data": {".validate": "newData.isString()"},
                }
            },
        }
    },
)


def turns_rules() -> dict[str, Any]:
    return {
        ".indexOn": ["startedAt"],
        "$mid": {
            ".write": C(
                """
Only a RUNNER writes turns (start, chunks, tools, finish), OPEN, and only
while the session's lock names that runner and this message: a runner that
lost its lease is stopped at its next write.
""",
                f"{SIGNED_IN} && {RUNNER} && {SV('lock/runner')} === auth.uid && {SV('lock/mid')} === $mid && {OPEN}",
            ),
            ".validate": "newData.hasChildren(['state', 'runner', 'fence', 'startedAt', 'attempt'])",
            "state": {
                ".write": C(
                    """
Cancel a stalled turn: when no runner holds the lease any more, the author or
the OWNER ends it as cancelled at once, in one write with endedAt,
cancelRequested, the queue item, its slot, the work entry, the lock and the
user message's 'cancelled' (each checked where it is written). Whichever
runner comes next finds nothing to do; a runner that was only cut off is
refused at its next write.
""",
                    f"{stalled_cancel(3)} && !{N(3, 'queue/{$mid}')}.exists() && {NV(3, 'transcript/{$mid}/state')} === 'cancelled'",
                ),
                ".validate": "newData.val() === 'running' || newData.val() === 'done' || newData.val() === 'failed' || newData.val() === 'cancelled' || newData.val() === 'interrupted'",
            },
            "runner": {".validate": "newData.val() === auth.uid || newData.val() === data.val()"},
            "fence": {".validate": "newData.isNumber()"},
            "startedAt": {
                ".validate": "newData.val() === now || (newData.isNumber() && newData.val() === data.val())"
            },
            "endedAt": {
                ".write": C("With a stalled cancel (see state).", stalled_cancel(3)),
                ".validate": "newData.val() === now || (newData.isNumber() && newData.val() === data.val())",
            },
            "attempt": {".validate": "newData.isNumber()"},
            "crashes": C(
                "How many runners died mid-turn on this message (a shutdown's hand-back is not one).",
                {".validate": "newData.isNumber() && newData.val() >= 0"},
            ),
            "error": {".validate": "newData.isString()"},
            "chunks": {"$seq": {".validate": "$seq.matches(/^c[0-9]{6,}$/) && newData.isString()"}},
            "tools": C(
                "Tool events: free-form objects from the runner.",
                {"$tid": {".validate": "newData.hasChildren()"}},
            ),
            "cancelRequested": C(
                "Cancel running: the message's author or the OWNER, still a MEMBER, OPEN, once, while the turn is running.",
                {
                    ".write": all_of(
                        SIGNED_IN,
                        "!data.exists()",
                        MEMBER,
                        f"{SV('turns/{$mid}/state')} === 'running'",
                        f"({SV('transcript/{$mid}/uid')} === auth.uid || {OWNER})",
                        OPEN,
                    ),
                    ".validate": "newData.hasChildren(['by', 'at'])",
                    "by": {".validate": "newData.val() === auth.uid"},
                    "at": NOW,
                    "$other": {".validate": False},
                },
            ),
            "approvals": C(
                "The agent's requests to use a tool during this turn (see approvals_rules).",
                approvals_rules()["$mid"],
            ),
            "$other": {".validate": False},
        },
    }


def approvals_rules() -> dict[str, Any]:
    holds = f"{SIGNED_IN} && {RUNNER} && {SV('lock/runner')} === auth.uid && {SV('lock/mid')} === $mid && {OPEN}"
    request = "data.parent()"  # from answer: the request it answers
    approvers = SV("meta/policy/approvers")
    answered = "newData.parent().child('answer')"
    by = "newData.child('by').val()"
    return {
        "$mid": {
            "$aid": {
                ".write": C(
                    """
The agent asks to use a tool: the RUNNER holding the lock for <mid>, OPEN,
writes the request (tool, a readable summary and detail, the message's
author, when it was asked and until when an answer counts) and, later, its
outcome.
""",
                    holds,
                ),
                ".validate": all_of(
                    f"$aid.matches(/^[^.$#\\[\\]/]{{1,{MAX_TOOL_ID}}}$/)",
                    "newData.hasChildren(['tool', 'summary', 'author', 'requestedAt', 'expiresAt'])",
                ),
                "tool": {
                    ".validate": "newData.isString() && newData.val().length >= 1 && newData.val().length <= 100"
                },
                "summary": {
                    ".validate": f"newData.isString() && newData.val().length <= {approvals.MAX_SUMMARY}"
                },
                "detail": {
                    ".validate": f"newData.isString() && newData.val().length <= {approvals.MAX_DETAIL}"
                },
                "author": C(
                    "The author of the message that caused the request.",
                    {".validate": f"newData.val() === {SV('transcript/{$mid}/uid')}"},
                ),
                "requestedAt": {
                    ".validate": "newData.val() === now || (data.exists() && newData.val() === data.val())"
                },
                "expiresAt": {
                    ".validate": f"newData.isNumber() && (data.exists() ? newData.val() === data.val() : newData.val() > now && newData.val() <= now + {approvals.MAX_TIMEOUT_S * 1000})"
                },
                "answer": C(
                    """
Answer: once, before expiresAt, while the turn runs and no outcome is
written, by a MEMBER whom the owner's policy lets answer: the OWNER always;
with approvers 'editors' any editor; with 'author' the message's author.
Never a runner (its grant above reaches here, its writes don't validate).
""",
                    {
                        ".write": all_of(
                            SIGNED_IN,
                            NOT_RUNNER,
                            "!data.exists()",
                            f"{request}.exists()",
                            f"!{request}.child('outcome').exists()",
                            f"{request}.child('expiresAt').val() > now",
                            f"{SV('turns/{$mid}/state')} === 'running'",
                            MEMBER,
                            OPEN,
                            any_of(
                                OWNER,
                                f"{approvers} === 'editors' && {SV('members/{auth.uid}/role')} === 'editor'",
                                f"{approvers} === 'author' && {request}.child('author').val() === auth.uid",
                            ),
                        ),
                        ".validate": f"{NOT_RUNNER} && !data.exists() && newData.hasChildren(['by', 'decision', 'at'])",
                        "by": {".validate": "newData.val() === auth.uid"},
                        "decision": {".validate": one_of("newData.val()", ("allow", "deny"))},
                        "reason": {
                            ".validate": f"newData.isString() && newData.val().length <= {approvals.MAX_REASON}"
                        },
                        "at": NOW,
                        "$other": {".validate": False},
                    },
                ),
                "outcome": C(
                    f"""
What the runner told the agent, once: the answer's decision and who gave
it, or (no answer) a deny by {", ".join(repr(u) for u in approvals.UNANSWERED)}; 'timeout' only
once expiresAt has passed.
""",
                    {
                        ".validate": all_of(
                            "!data.exists()",
                            "newData.hasChildren(['allow', 'by', 'at'])",
                            any_of(
                                f"{answered}.exists() && newData.child('allow').val() === ({answered}.child('decision').val() === 'allow') && {by} === {answered}.child('by').val()",
                                f"!{answered}.exists() && newData.child('allow').val() === false && ("
                                + " || ".join(
                                    f"{by} === 'timeout' && now >= newData.parent().child('expiresAt').val()"
                                    if u == "timeout"
                                    else f"{by} === '{u}'"
                                    for u in approvals.UNANSWERED
                                )
                                + ")",
                            ),
                        ),
                        "allow": {".validate": "newData.isBoolean()"},
                        "by": {".validate": "newData.isString() && newData.val().length <= 128"},
                        "reason": {
                            ".validate": f"newData.isString() && newData.val().length <= {approvals.MAX_REASON}"
                        },
                        "at": NOW,
                        "$other": {".validate": False},
                    },
                ),
                "$other": {".validate": False},
            }
        }
    }


AGENT = C(
    """
Which agent answers this session, as the runner that last held the lock
saw it: name, model, working folder (its last part) and the agent's own
session id (so any runner can resume it). The RUNNER holding the lock, OPEN.
""",
    {
        ".write": f"{SIGNED_IN} && {RUNNER} && {SV('lock/runner')} === auth.uid && {OPEN}",
        ".validate": "newData.hasChildren(['name', 'runner', 'at'])",
        "name": {
            ".validate": "newData.isString() && newData.val().length >= 1 && newData.val().length <= 40"
        },
        "model": {".validate": "newData.isString() && newData.val().length <= 100"},
        "sessionId": {".validate": "newData.isString() && newData.val().length <= 200"},
        "folder": {".validate": "newData.isString() && newData.val().length <= 200"},
        "runner": {".validate": "newData.val() === auth.uid"},
        "at": NOW,
        "$other": {".validate": False},
    },
)

LOCK_MID = "{data.child('mid').val()}"
LOCK = C(
    """
Claims: only a RUNNER (ETag transaction), OPEN, and only a free lock, its own,
or one whose lease has run out. A stalled cancel (see turns/<mid>/state)
deletes a lapsed lock in the write that cancels its turn.
""",
    {
        ".write": f"{SIGNED_IN} && "
        + any_of(
            f"{RUNNER} && (!data.exists() || data.child('runner').val() === auth.uid || data.child('leaseUntil').val() <= now) && {OPEN}",
            all_of(
                "data.exists()",
                "!newData.exists()",
                "data.child('leaseUntil').val() <= now",
                MEMBER,
                OPEN,
                f"({SV('transcript/' + LOCK_MID + '/uid')} === auth.uid || {OWNER})",
                f"{NV(1, 'turns/' + LOCK_MID + '/state')} === 'cancelled'",
            ),
        ),
        ".validate": "newData.hasChildren(['mid', 'runner', 'fence', 'leaseUntil'])",
        "mid": {".validate": "newData.isString()"},
        "runner": {".validate": "newData.val() === auth.uid"},
        "fence": {".validate": "newData.isNumber()"},
        "leaseUntil": {".validate": "newData.isNumber()"},
        "$other": {".validate": False},
    },
)


def sessions_rules() -> dict[str, Any]:
    return {
        "$sid": {
            ".read": C(
                "Members (any role) and runners read the whole session.",
                f"{SIGNED_IN} && (data.child('members/' + auth.uid).exists() || {RUNNER})",
            ),
            "meta": meta_rules(),
            "members": members_rules(),
            "names": names_rules(),
            "roles": roles_rules(),
            "kicked": kicked_rules(),
            "presence": presence_rules(),
            "queue": queue_rules(),
            "slots": slots_rules(),
            "transcript": messages_rules(),
            "turns": turns_rules(),
            "agent": AGENT,
            "lock": LOCK,
        }
    }


WORK = C(
    'The runners\' work index, queried with orderBy "at".',
    {
        ".read": f"{SIGNED_IN} && {RUNNER}",
        ".indexOn": ["at"],
        "$mid": {
            ".write": C(
                """
RUNNER: anything (a runner may drop the entry of a session that was closed
mid-turn). Send: created with the caller's own uid, in the same write that
creates sessions/<sid>/queue/<mid> (whose own rule checks the sender).
Cancel: deleted in the same write that deletes that queued item, or that
cancels its stalled turn (whose own rules check who may).
""",
                f"{SIGNED_IN} && "
                + any_of(
                    RUNNER,
                    "!data.exists() && newData.child('uid').val() === auth.uid && newData.child('sid').isString() && "
                    + f"!{R(WORK_NEW_ITEM)}.exists() && "
                    + f"{R(WORK_NEW_ITEM + '/uid', 'newData.parent().parent()')}.val() === auth.uid",
                    "data.exists() && !newData.exists() && "
                    + f"{R(WORK_OLD_ITEM + '/state')}.val() === 'queued' && "
                    + f"!{R(WORK_OLD_ITEM, 'newData.parent().parent()')}.exists()",
                    "data.exists() && !newData.exists() && "
                    + f"{R(WORK_OLD_ITEM + '/state')}.val() === 'running' && "
                    + f"{R(WORK_OLD_TURN + '/state', 'newData.parent().parent()')}.val() === 'cancelled' && "
                    + f"!{R(WORK_OLD_ITEM, 'newData.parent().parent()')}.exists()",
                ),
            ),
            ".validate": "newData.hasChildren(['sid', 'uid', 'at'])",
            "sid": {".validate": f"newData.isString() && newData.val().matches({PUSHID})"},
            "uid": {".validate": "newData.isString()"},
            "at": NOW,
            "$other": {".validate": False},
        },
    },
)

USERS = C(
    """
Each user's own index of the sessions they are in (`emdash-fb sessions`, and
renaming everywhere): users/<uid>/sessions/<sid> = {at}. Only that user reads
or writes it; an entry is created only for a session the user is a member of
after the write (share and join write it together), and may be deleted at
any time (leave).
""",
    {
        "$uid": {
            ".read": f"{SIGNED_IN} && auth.uid === $uid",
            "sessions": {
                "$sid": {
                    ".write": f"{SIGNED_IN} && auth.uid === $uid && {NOT_RUNNER} && (!newData.exists() || {R('sessions/{$sid}/members/{$uid}', 'newData.parent().parent().parent().parent()')}.exists())",
                    ".validate": f"$sid.matches({PUSHID}) && newData.hasChildren(['at'])",
                    "at": NOW,
                    "$other": {".validate": False},
                }
            },
            "$other": {".validate": False},
        }
    },
)

RUNNERS = C(
    'Signed-in users see which runners are alive ("agent offline").',
    {
        ".read": SIGNED_IN,
        "$rid": {
            ".write": C(
                "A runner writes only its own record.",
                f"{SIGNED_IN} && {RUNNER} && $rid === auth.uid",
            ),
            ".validate": "newData.hasChildren(['heartbeat', 'agent', 'capacity'])",
            "heartbeat": {".validate": "newData.isNumber()"},
            "agent": {
                ".validate": "newData.isString() && newData.val().length >= 1 && newData.val().length <= 64"
            },
            "capacity": {".validate": "newData.isNumber() && newData.val() >= 0"},
            "startedAt": {".validate": "newData.isNumber()"},
            "active": {".validate": "newData.isNumber() && newData.val() >= 0"},
            "$other": {".validate": False},
        },
    },
)

HEADER = """
emdash-fb security rules: the whole security model (see docs/DATA-MODEL.md).

GENERATED by rules/build_rules.py from named conditions; edit that file and
run `python rules/build_rules.py` (a test fails when this file is stale).
Deployable unchanged with `firebase deploy --only database`; the bundled
emulator loads the same file. Only documented rules features are used.

How to read this file
- Nothing grants at /, /sessions or /invites, so nobody can list them.
- .write rules cascade (a grant at a node covers everything below it), so
  grants sit on the deepest node each operation writes, and a grant on a
  whole record is limited to creating (!data.exists()) or deleting
  (!newData.exists()) it. Field shapes live in .validate rules (skipped for
  deletes); `"$other": {".validate": false}` refuses unknown fields.
- `root` is the database BEFORE the request; `newData.parent()...` reaches
  the database AFTER the whole (multi-path) request. Rules that tie two
  paths together ("created in the same write") compare the two.
- Conditions that repeat are named in the comments:
    OPEN      meta/status === 'open' && meta/lastActivity + meta/idleTimeoutMs > now
    OWNER     meta/owner === auth.uid
    MEMBER    members/<auth.uid> exists
    SENDER    members/<auth.uid>/role is 'owner' or 'editor'
    RUNNER    auth.token.runner === true (runner processes; end users can't get the claim)
    PUSHID    a 20-character push id: /^[0-9A-Za-z_\\-]{20}$/
    the look-alike key of a name: lower case, then the replace() chain of
              emdash_fb/session/names.py CONFUSABLES
- Every rule starts with `auth != null`; an evaluation error denies, so
  cheap guards that tell the operations apart come first in each branch.
"""


def tree() -> dict[str, Any]:
    return {
        "rules": {
            "allow": ALLOW,
            "invites": INVITES,
            "sessions": sessions_rules(),
            "attachments": ATTACHMENT_DATA,
            "work": WORK,
            "users": USERS,
            "runners": RUNNERS,
        }
    }


# -- emitting ----------------------------------------------------------------------


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}// {line}".rstrip() for line in text.splitlines()]


def _emit(value: Any, indent: str) -> str:
    if isinstance(value, C):
        value = value.value
    if not isinstance(value, dict):
        return json.dumps(value, ensure_ascii=True)
    inner = indent + "  "
    lines = ["{"]
    items = list(value.items())
    for i, (key, child) in enumerate(items):
        if isinstance(child, C):
            lines += _comment(child.comment, inner)
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"{inner}{json.dumps(key)}: {_emit(child, inner)}{comma}")
    lines.append(indent + "}")
    return "\n".join(lines)


def render() -> str:
    head = "\n".join(_comment(HEADER.strip("\n"), ""))
    text = head + "\n" + _emit(tree(), "") + "\n"
    text.encode("ascii")  # non-ASCII lives in \u escapes: nothing invisible in the file
    return text


def render_names() -> str:
    """The name rules for the web viewer: folding, forbidden characters, reserved keys."""
    names = {
        "confusables": [list(pair) for pair in CONFUSABLES],
        "forbidden": FORBIDDEN_CLASS,
        "reservedKeys": sorted(RESERVED_KEYS),
        "max": MAX_NAME,
    }
    return json.dumps(names, indent=1) + "\n"


def main(argv: list[str]) -> int:
    outputs = {OUT: render(), NAMES_OUT: render_names()}
    if "--check" in argv:
        stale = [path for path, text in outputs.items() if path.read_text() != text]
        for path in stale:
            print(f"{path} is out of date: run python {Path(__file__).name}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text)
        print(f"wrote {path} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
