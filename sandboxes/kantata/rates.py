"""Which rates a new time entry gets: the project's rate card, in the version in force on the day, and the
member's cost rate in the project's currency.

Kantata resolves a rate through the project's Rate Card (one currency of a Rate Card Set), the Rate Card
Version belonging to the Set Version effective on the date, and that version's Rate Card Role for the
person's role, falling back to the version's default rate
(https://developer.kantata.com/kantata/specification/rate-card-role-(rate-for-a-role)). The cost rate is the
account member's Cost Rate in that currency as it stands when the entry is created: "Updating a cost rate
will set the cost rate for future work. Existing time entries will not be affected" (Cost Rates reference).
"""

from __future__ import annotations

from sandboxes.kantata.state import Doc, KantataState


class RateFinder:
    """Resolves rates for one request; caches per request, so a bulk create reads the cards once."""

    def __init__(self, state: KantataState) -> None:
        self._state = state
        self._versions: dict[str, list[tuple[str, Doc]]] = {}
        self._roles: dict[str, dict[str, int]] | None = None
        self._costs: dict[tuple[str, str], int] | None = None

    def cost_rate(self, user_id: str, currency: str) -> int | None:
        """The member's hourly cost in `currency`, in subunits; None when they have none in it."""
        if self._costs is None:
            members = {
                int(doc["id"]): str(doc["user_id"]) for doc in self._state.col("account_memberships")
            }
            self._costs = {
                (members[int(doc["account_membership_id"])], str(doc["currency"])): int(
                    doc["amount_in_subunits"]
                )
                for doc in self._state.col("cost_rates")
                if int(doc["account_membership_id"]) in members
            }
        return self._costs.get((user_id, currency))

    def default_role(self, workspace_id: str, user: Doc) -> str | None:
        """The person's project role if their participation has one, else their account role."""
        for participation_id in self._state.in_workspace("participations", workspace_id):
            participation = self._state.get("participations", participation_id)
            if participation and participation["user_id"] == user["id"] and participation.get("_role_id"):
                return str(participation["_role_id"])
        role_id = user.get("_role_id")
        return str(role_id) if role_id else None

    def rate(self, workspace: Doc, role_id: str | None, day: str) -> int | None:
        rate_card_id = workspace.get("rate_card_id")
        if rate_card_id is None:
            return None
        version = self._version_on(str(rate_card_id), day)
        if version is None:
            return None
        if role_id is not None:
            explicit = self._role_rates().get(version["id"], {}).get(role_id)
            if explicit is not None:
                return explicit
        default = version.get("default_rate")
        return int(default) if default is not None else None

    def _version_on(self, rate_card_id: str, day: str) -> Doc | None:
        if rate_card_id not in self._versions:
            dated = []
            for version in self._state.col("rate_card_versions"):
                if str(version["rate_card_id"]) != rate_card_id:
                    continue
                set_version = self._state.get("rate_card_set_versions", version["rate_card_set_version_id"])
                if set_version is not None:
                    dated.append((set_version["effective_date"], version))
            dated.sort(key=lambda pair: pair[0])
            self._versions[rate_card_id] = dated
        in_force = [version for effective, version in self._versions[rate_card_id] if effective <= day]
        return in_force[-1] if in_force else None

    def _role_rates(self) -> dict[str, dict[str, int]]:
        if self._roles is None:
            self._roles = {}
            for role_rate in self._state.col("rate_card_roles"):
                self._roles.setdefault(str(role_rate["rate_card_version_id"]), {})[
                    str(role_rate["role_id"])
                ] = int(role_rate["rate"])
        return self._roles
