"""The held-mail workflow: release, request, approve, deny. The command line and the web
console call these functions; serve carries the decisions out (:mod:`.releasing`).

Rules (each one checked here, recorded in the store, and written to the audit log):

- **Release** (``release``): an operator (or approver) releases a held message. Nothing is sent
  from here: serve sanitizes the original again with its hold reasons lifted (what held it is
  removed, with a notice) and delivers it. A message held for a limit is released as text only
  unless the operator raises that limit for this run (``raised_limits``, recorded).
- **Request** (``request``): with ``parts``, an exception (例外措置): those original parts may cross
  as the sender sent them; without, a release that needs an approver's consent. A reason is
  required; an exception needs the malware scanner on. A recipient (self-service) may ask for a
  release, never an exception, and only of mail addressed to one of their own addresses.
- **Approve / deny**: by a user with the approver role who is not the requester. An approved
  exception expires (``release.exception_days`` unless given); serve refuses an expired one.
  Held outbound mail: by an approver of the sender's group (its own only with
  ``self_approval``), and approved once ``approvals_required`` of them approved (k of n; each
  approval is an audit line with the count); one denial denies it.
- A message has one open decision at a time; a released message is never released again.

Threat model: the acting user's name comes from :mod:`.identity` and must be an enabled user of
the store with the role the action needs. Texts given by operators are bounded and cleaned
before they are stored or logged. Nothing in a message can request, approve or mark a release.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.configuration.config import Config
from gateway.configuration.settings import ApprovalGroup
from gateway.evidence.message_record import decision_record
from gateway.evidence.ports import AuditPort
from gateway.evidence.quarantine import QuarantineEntry, clean_text, is_valid_id
from gateway.evidence.quarantine.index import QuarantineIndex
from gateway.service.access import Permission, may
from gateway.store import Store
from gateway.store.directory import groups_of_sender, has_groups
from gateway.store.users import User, addresses_of, find_user
from gateway.store.workflow import (
    ALREADY,
    Decision,
    StateConflict,
    UnknownMessageError,
    add_approval,
    decide,
    history,
    of_kinds,
    open_decision,
    open_decision_of,
)
from sanitizers.addresses import address_matches
from sanitizers.policy import Limits
from sanitizers.vocabulary import AuditEvent, MessageState, RequestKind, RequestState, UserRole

MAX_REASON_CHARS: Final = 500
PART_PATH_CHARS: Final = frozenset("0123456789.")
MAX_PARTS: Final = 100
# Held outbound mail the console lists at most (oldest first; expiry keeps the number small).
MAX_LISTED: Final = 500

# Where a release may start: mail held (or waiting for a password), or an exception denied.
RELEASABLE_FROM: Final = frozenset(
    {MessageState.HELD, MessageState.AWAITING_PASSWORD, MessageState.DENIED}
)
# An exception may also be asked for mail delivered with parts removed.
EXCEPTION_FROM: Final = RELEASABLE_FROM | {MessageState.DELIVERED}


class WorkflowError(Exception):
    """A workflow action refused; the subclass says why."""


class NotFoundError(WorkflowError):
    """No quarantined message with that reference."""


class WrongStateError(WorkflowError):
    """The message's state does not allow the action."""


class NotAllowedError(WorkflowError):
    """The acting user may not do this."""


class InvalidRequestError(WorkflowError):
    """The request itself is malformed (no reason, a bad part or limit)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A recorded decision, with the entry it is about."""

    decision: Decision
    entry: QuarantineEntry


class HeldMail:
    """The workflow over one store, for one configuration; ``audit`` gets one line per action."""

    def __init__(self, store: Store, config: Config, audit: AuditPort) -> None:
        self.store = store
        self.config = config
        self.audit = audit
        self.index = QuarantineIndex(store)

    # -- actions ---------------------------------------------------------------------------

    def release(
        self, ref: str, actor: str, *, raised_limits: Mapping[str, float] | None = None
    ) -> Outcome:
        """Release a held message now (serve carries it out)."""
        user = self._user(actor, Permission.RELEASE)
        entry = self._entry(ref)
        limits = self.checked_limits(raised_limits or {})
        decision = self._open(
            entry,
            kind=RequestKind.RELEASE,
            actor=user.name,
            reason="",
            allowed=RELEASABLE_FROM,
            approved=True,
            raised_limits=limits,
        )
        self._audit(AuditEvent.RELEASE, decision, user.name)
        return Outcome(decision, self._entry(ref))

    def request(
        self,
        ref: str,
        actor: str,
        reason: str,
        *,
        parts: Iterable[str] = (),
        raised_limits: Mapping[str, float] | None = None,
    ) -> Outcome:
        """Ask for a release (without ``parts``) or an exception for ``parts`` (例外措置); an
        approver other than ``actor`` decides."""
        entry = self._entry(ref)
        text = self._reason(reason)
        wanted = self._parts(parts)
        user = self._requester(actor, entry, exception=bool(wanted))
        if wanted and not self.config.scanner.enabled:
            raise NotAllowedError(
                "an exception lets original files cross only after the malware scan: "
                "scanner.enabled is off"
            )
        decision = self._open(
            entry,
            kind=RequestKind.EXCEPTION if wanted else RequestKind.RELEASE,
            actor=user.name,
            reason=text,
            allowed=EXCEPTION_FROM if wanted else RELEASABLE_FROM,
            approved=False,
            parts=wanted,
            raised_limits=self.checked_limits(raised_limits or {}),
        )
        self._audit(AuditEvent.REQUEST, decision, user.name)
        return Outcome(decision, self._entry(ref))

    def approve(
        self, ref: str, actor: str, *, expires: datetime | None = None, comment: str = ""
    ) -> Outcome:
        """Approve the pending request of ``ref`` (not one's own); ``comment``: the approver's
        words on held outbound mail (optional, recorded)."""
        user, pending = self._deciding(ref, actor)
        now = datetime.now(UTC)
        if pending.kind is RequestKind.EXCEPTION and not self.config.scanner.enabled:
            raise NotAllowedError("an exception needs the malware scanner: scanner.enabled is off")
        until = expires or now + timedelta(days=self.config.release.exception_days)
        if until <= now:
            raise InvalidRequestError("the expiry must be in the future")
        words = clean_text(comment.strip(), MAX_REASON_CHARS) or None
        if pending.kind is not RequestKind.OUTBOUND:
            decision = self._decide(
                pending, approve=True, actor=user.name, reason=words, expires=until
            )
            self._audit(AuditEvent.APPROVAL, decision, user.name)
            return Outcome(decision, self._entry(ref))
        required = approvals_required(self.config, self._entry(ref).mail_from, self.store)
        try:
            decision, count = add_approval(
                self.store,
                pending,
                approver=user.name,
                comment=words,
                required=required,
                expires_at=until,
                now=now,
            )
        except StateConflict as exc:
            if exc.found == ALREADY:
                raise WrongStateError(
                    f"user {user.name!r} approved this mail already: "
                    f"{required} approvers must approve it"
                ) from exc
            raise WrongStateError(
                f"request {pending.id} was decided meanwhile ({exc.found})"
            ) from exc
        record = decision_record(AuditEvent.APPROVAL, decision, user.name)
        record["approvals"] = count
        record["approvals_required"] = required
        self.audit.write(record)
        return Outcome(decision, self._entry(ref))

    def deny(self, ref: str, actor: str, reason: str) -> Outcome:
        """Deny the pending request of ``ref``."""
        user, pending = self._deciding(ref, actor)
        text = self._reason(reason)
        decision = self._decide(pending, approve=False, actor=user.name, reason=text, expires=None)
        self._audit(AuditEvent.DENIAL, decision, user.name)
        return Outcome(decision, self._entry(ref))

    def held_outbound(self) -> list[tuple[Decision, QuarantineEntry]]:
        """Held outbound mail waiting for its approvers (at most :data:`MAX_LISTED`, oldest
        first), each with its entry: the console shows each user the ones they may see."""
        pending = of_kinds(
            self.store, RequestState.PENDING, (RequestKind.OUTBOUND,), limit=MAX_LISTED
        )
        found = []
        for decision in pending:
            try:
                found.append((decision, self.index.get(decision.message)))
            except LookupError:
                continue  # purged meanwhile
        return found

    def outbound_decision(self, ref: str) -> Decision | None:
        """The outbound decision of ``ref`` (the latest), or None: not outbound mail."""
        return next(
            (d for d in reversed(history(self.store, ref)) if d.kind is RequestKind.OUTBOUND),
            None,
        )

    def history(self, ref: str) -> list[Decision]:
        """Every decision on ``ref``, oldest first."""
        self._entry(ref)
        return history(self.store, ref)

    # -- checks ----------------------------------------------------------------------------

    def checked_limits(self, raised: Mapping[str, float]) -> dict[str, float]:
        """``raised`` if each is a ``policy.limits`` setting raised above its configured value
        (the time budget still below ``worker.sanitize_timeout_seconds``)."""
        current = self.config.policy.limits
        checked: dict[str, float] = {}
        for name, value in raised.items():
            if name not in Limits.model_fields:
                known = ", ".join(sorted(Limits.model_fields))
                raise InvalidRequestError(f"unknown limit {name!r}; the limits are: {known}")
            before = getattr(current, name)
            if not value > before:
                raise InvalidRequestError(
                    f"limit {name} may only be raised for a release (it is {before})"
                )
            checked[name] = value
        try:
            Limits.model_validate(current.model_dump() | checked)
        except ValueError as exc:
            raise InvalidRequestError(f"raised limits: {exc}") from exc
        budget = checked.get("seconds", current.seconds)
        if budget >= self.config.worker.sanitize_timeout_seconds:
            raise InvalidRequestError(
                f"limit seconds ({budget}) must stay below worker.sanitize_timeout_seconds "
                f"({self.config.worker.sanitize_timeout_seconds})"
            )
        return checked

    def _user(self, name: str, permission: Permission) -> User:
        user = find_user(self.store, name)
        if user is None:
            raise NotAllowedError(
                f"{clean_text(name, 100)!r} is not a user of the held-mail workflow "
                "(an administrator adds one: mukaika user add NAME --role operator|approver)"
            )
        if user.disabled:
            raise NotAllowedError(f"user {user.name!r} is disabled")
        if not may(user.role, permission):
            if permission is Permission.DECIDE:
                raise NotAllowedError(f"user {user.name!r} is not an approver")
            raise NotAllowedError(
                f"user {user.name!r} ({user.role}) may not release held mail: "
                "an operator or an approver may"
            )
        return user

    def _requester(self, name: str, entry: QuarantineEntry, *, exception: bool) -> User:
        """The user asking for a release of ``entry``: one who may release, or a recipient
        asking for a release (not an exception) of mail to one of their own addresses."""
        user = find_user(self.store, name)
        if user is None or user.disabled or may(user.role, Permission.RELEASE):
            return self._user(name, Permission.RELEASE)
        if not may(user.role, Permission.REQUEST_OWN):
            return self._user(name, Permission.RELEASE)  # refused, with the reason
        if exception:
            raise NotAllowedError(
                f"user {user.name!r} ({user.role}) may ask for a release, not an exception: "
                "an operator or an approver may"
            )
        own = set(addresses_of(self.store, user.name))
        if user.tenant and entry.tenant != user.tenant:
            own = set()  # another tenant's mail is never one's own
        if not own & {address.lower() for address in entry.rcpt_to}:
            raise NotAllowedError(
                f"user {user.name!r} may ask only for mail to their own addresses"
            )
        return user

    def _entry(self, ref: str) -> QuarantineEntry:
        if not is_valid_id(ref):
            raise NotFoundError(f"no quarantined message with reference {clean_text(ref, 80)!r}")
        try:
            return self.index.get(ref)
        except LookupError as exc:
            raise NotFoundError(str(exc)) from exc

    def _deciding(self, ref: str, actor: str) -> tuple[User, Decision]:
        user = self._user(actor, Permission.DECIDE)
        entry = self._entry(ref)
        pending = open_decision_of(self.store, ref)
        if pending is None or pending.state is not RequestState.PENDING:
            raise WrongStateError(
                f"message {ref} has no request waiting for approval ({entry.state})"
            )
        if pending.kind is RequestKind.OUTBOUND:
            problem = outbound_approval_problem(
                self.config,
                user.name,
                entry.mail_from,
                self.store,
                addresses_of(self.store, user.name),
            )
            if problem:
                raise NotAllowedError(problem)
        elif pending.requested_by == user.name:
            raise NotAllowedError(
                f"user {user.name!r} made this request: another approver must decide it"
            )
        return user, pending

    @staticmethod
    def _reason(reason: str) -> str:
        text = clean_text(reason.strip(), MAX_REASON_CHARS)
        if not text:
            raise InvalidRequestError("a reason is required")
        return text

    @staticmethod
    def _parts(parts: Iterable[str]) -> tuple[str, ...]:
        wanted = tuple(dict.fromkeys(part.strip() for part in parts))
        if len(wanted) > MAX_PARTS:
            raise InvalidRequestError(f"at most {MAX_PARTS} parts")
        for part in wanted:
            if not part or not set(part) <= PART_PATH_CHARS or ".." in part:
                raise InvalidRequestError(
                    f"{clean_text(part, 40)!r} is not a part path (e.g. 1.2: see mukaika explain)"
                )
        return wanted

    # -- recording -------------------------------------------------------------------------

    def _open(
        self,
        entry: QuarantineEntry,
        *,
        kind: RequestKind,
        actor: str,
        reason: str,
        allowed: frozenset[MessageState],
        approved: bool,
        parts: tuple[str, ...] = (),
        raised_limits: Mapping[str, float],
    ) -> Decision:
        if entry.verdict != "hold" and kind is RequestKind.RELEASE:
            raise WrongStateError(f"message {entry.id} was not held (verdict {entry.verdict})")
        if any(d.kind is RequestKind.OUTBOUND for d in history(self.store, entry.id)):
            # Outbound mail is never sanitized and delivered inward; only its approvers decide.
            raise WrongStateError(
                f"message {entry.id} is outbound mail: an approver of its sender's group "
                "decides on it (quarantine approve / deny), nothing else releases it"
            )
        try:
            return open_decision(
                self.store,
                entry.id,
                kind=kind,
                actor=actor,
                reason=reason,
                now=datetime.now(UTC),
                allowed_from=allowed,
                approved=approved,
                parts=parts,
                raised_limits=raised_limits,
            )
        except UnknownMessageError as exc:
            raise NotFoundError(f"no quarantined message with reference {entry.id}") from exc
        except StateConflict as exc:
            raise WrongStateError(_state_problem(entry.id, exc.found)) from exc

    def _decide(
        self,
        pending: Decision,
        *,
        approve: bool,
        actor: str,
        reason: str | None,
        expires: datetime | None,
    ) -> Decision:
        try:
            return decide(
                self.store,
                pending,
                approve=approve,
                actor=actor,
                reason=reason,
                expires_at=expires,
                now=datetime.now(UTC),
            )
        except StateConflict as exc:
            raise WrongStateError(
                f"request {pending.id} was decided meanwhile ({exc.found})"
            ) from exc

    def _audit(self, event: AuditEvent, decision: Decision, actor: str) -> None:
        self.audit.write(decision_record(event, decision, actor))


def outbound_groups(config: Config, sender: str) -> list[ApprovalGroup]:
    """The ``[[outbound.groups]]`` ``sender`` belongs to."""
    return [g for g in config.outbound.groups if address_matches(sender, g.senders)]


def approvals_required(config: Config, sender: str, store: Store | None = None) -> int:
    """How many approvers must approve held outbound mail of ``sender`` (k of n): when the
    directory in ``store`` holds groups, ``directory.approvals_required`` for a sender in one
    of them; else the largest ``approvals_required`` of the sender's ``[[outbound.groups]]``;
    1 for a sender in no group."""
    if store is not None and has_groups(store):
        return config.directory.approvals_required if groups_of_sender(store, sender) else 1
    return max((g.approvals_required for g in outbound_groups(config, sender)), default=1)


def outbound_approval_problem(
    config: Config,
    approver: str,
    sender: str,
    store: Store | None = None,
    addresses: Iterable[str] = (),
) -> str | None:
    """Why ``approver`` may not decide on held outbound mail of ``sender``, or None.

    When the directory in ``store`` holds groups (``mukaika user import``), it decides and
    ``[[outbound.groups]]`` is not read: the approvers of the sender's groups are the members
    of those groups with the role approver (:func:`directory_approval_problem`). Otherwise the
    sender's groups of ``[[outbound.groups]]`` name their approvers. Either way a sender in no
    group may be decided by any approver, and deciding on one's own mail (the sender is the
    approver's name or one of their ``addresses``) needs ``self_approval`` in the group."""
    if store is not None and has_groups(store):
        return directory_approval_problem(store, config, approver, sender)
    groups = outbound_groups(config, sender)
    own = sender.strip().lower() in {approver.strip().lower(), *(a.lower() for a in addresses)}
    if not groups:
        return f"user {approver!r} may not approve their own mail" if own else None
    allowed = [g for g in groups if approver.lower() in {a.lower() for a in g.approvers}]
    if not allowed:
        names = ", ".join(g.name for g in groups)
        return f"user {approver!r} is not an approver of the sender's group ({names})"
    if own and not any(g.self_approval for g in allowed):
        return f"user {approver!r} may not approve their own mail (self_approval is off)"
    return None


def directory_approval_problem(
    store: Store, config: Config, approver: str, sender: str
) -> str | None:
    """The directory's answer to :func:`outbound_approval_problem`: the sender's groups are
    those of the enabled users owning the sender's address; ``approver`` must be an approver
    of one of them. Their own mail (the sender's address is one of ``approver``'s) needs
    ``directory.self_approval``."""
    groups = groups_of_sender(store, sender)
    own = sender.strip().lower() in addresses_of(store, approver)
    if own and not config.directory.self_approval:
        return f"user {approver!r} may not approve their own mail (directory.self_approval is off)"
    if not groups:
        return None
    if not any(approver in group.approvers for group in groups):
        names = ", ".join(group.name for group in groups)
        return f"user {approver!r} is not an approver of the sender's group ({names})"
    return None


def may_see_outbound(
    config: Config,
    name: str,
    role: UserRole,
    addresses: Iterable[str],
    sender: str,
    store: Store | None = None,
) -> bool:
    """Whether a user may see a held outbound mail of ``sender``: its sender (one of their
    addresses), or an approver of the sender's group (the directory's when ``store`` holds
    groups, else ``[[outbound.groups]]``; any approver for a sender in no group). Nobody else,
    whatever else their role sees: the mail may carry personal numbers that only the decision
    needs."""
    if sender.strip().lower() in {a.lower() for a in addresses}:
        return True
    if not may(role, Permission.DECIDE):
        return False
    if store is not None and has_groups(store):
        found = groups_of_sender(store, sender)
        return not found or any(name in group.approvers for group in found)
    groups = outbound_groups(config, sender)
    return not groups or any(name.lower() in {a.lower() for a in g.approvers} for g in groups)


def _state_problem(ref: str, found: str) -> str:
    if found == MessageState.RELEASED:
        return f"message {ref} was released already: it is never released twice"
    if found in (MessageState.RELEASE_REQUESTED, MessageState.APPROVED):
        return f"message {ref} has a decision open ({found})"
    return f"message {ref} is {found}: nothing to release"
