"""Who may submit what (DESIGN Decisions 12 and 14), decided by the institution registry.

The regulator submits ``institution_registry`` under its own USCC; the current accepted
registry of the file's period (or else the latest earlier one, or else the earliest
later one) decides who else may submit which types. Before any registry has been
accepted, permissions cannot be checked: files are taken on the folder's word (the name's
USCC must be the folder's) and flagged with macro edit M003, so the first night of a new
installation is not lost — the regulator loads the registry first (``landing_batches``
and the collect DAG take registry files before all others).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from collectwatch.config import Settings
from collectwatch.intake.lifecycle import StateStore

REGISTRY_TYPE = "institution_registry"
REGULATOR = "regulator"

# The types each role submits.
ROLE_TYPES = {
    "lender": ("lender_portfolio", "agency_assignment", "complaints"),
    "agency": ("agency_caseload", "contact_events", "complaints"),
    REGULATOR: (REGISTRY_TYPE, "complaints"),
}
# The complaint sources each role files (the hotline's and the association's forwarded
# complaints come through the regulator).
ROLE_COMPLAINT_SOURCES = {
    "lender": ("lender",),
    "agency": ("agency",),
    REGULATOR: ("hotline", "association"),
}
# Counterparty columns and the role the registry must give them.
COUNTERPARTIES = {
    "agency_assignment": ("agency_uscc", "agency"),
    "agency_caseload": ("lender_uscc", "lender"),
    "contact_events": ("lender_uscc", "lender"),
}


@dataclass(frozen=True)
class Permission:
    """The submitter's role (None when no registry is in effect) and, when the file is
    refused, why (English / Chinese)."""

    role: str | None
    registry_period: str | None
    refusal: str | None = None


class Registry:
    """The current accepted registries, held in table ``registry`` of an intake connection
    (loaded once per batch, reloaded when a registry is accepted)."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, settings: Settings, store: StateStore | None
    ):
        self.con = con
        self.settings = settings
        self.store = store
        self.periods: list[str] = []
        self.load()

    def load(self) -> None:
        self.in_effect: tuple | None = None  # (period, registry period) of the table
        self.entries: dict[str, tuple] = {}  # its rows: USCC -> (role, status, reporting)
        versions = self.store.current(REGISTRY_TYPE) if self.store else []
        self.periods = sorted(version.period for version in versions)
        if not versions:
            self.con.execute(
                "create or replace table registry (registry_period varchar, uscc varchar, "
                "role varchar, status varchar, valid_to date)"
            )
            return
        paths = ", ".join(f"'{self.settings.raw_dir / v.raw_path}'" for v in versions)
        self.con.execute(
            f"create or replace table registry as select period as registry_period, uscc, "
            f"role, status, valid_to::date as valid_to from read_parquet([{paths}])"
        )

    def period_in_effect(self, period: str) -> str | None:
        earlier = [p for p in self.periods if p <= period]
        if earlier:
            return earlier[-1]
        return self.periods[0] if self.periods else None

    def fill_in_effect(self, period: str) -> str | None:
        """Table ``registry_in_effect`` for ``period`` (see ``permission``); the period of
        the registry in effect."""
        registry_period = self.period_in_effect(period)
        if self.in_effect == (period, registry_period):
            return registry_period  # the table already holds it (a batch asks per file)
        self.in_effect = (period, registry_period)
        self.con.execute(
            "create or replace temp table registry_in_effect as "
            "select uscc, role, status, status <> 'revoked' "
            "or coalesce(valid_to >= (? || '-01')::date, false) as reporting "
            "from registry where registry_period = ?",
            [period, registry_period],
        )
        # The same rows by USCC for ``permission``: one lookup per file, and a query per
        # file cost ~0.7 ms (a national month has ~16,000 files; the registry ~5,500 rows).
        self.entries = {
            uscc: (role, status, reporting)
            for uscc, role, status, reporting in self.con.execute(
                "select uscc, role, status, reporting from registry_in_effect"
            ).fetchall()
        }
        return registry_period

    def permission(self, uscc: str, submission_type: str, period: str) -> Permission:
        """Whether ``uscc`` may submit ``submission_type`` for ``period``; also fills table
        ``registry_in_effect`` (uscc, role, status, reporting) for the row-level counterparty
        edit. ``reporting``: the institution still reports for this period. A suspended
        institution keeps its book and must keep reporting it; a revoked one reports the
        periods that began before its licence ended (valid_to), and no later ones."""
        registry_period = self.fill_in_effect(period)
        if uscc == self.settings.regulator_uscc:
            return self._decide(REGULATOR, registry_period, uscc, submission_type)
        if submission_type == REGISTRY_TYPE:
            return Permission(
                None,
                registry_period,
                f"{uscc} may not submit {REGISTRY_TYPE}: only the regulator "
                f"({self.settings.regulator_uscc}) does / 仅监管机构可报送机构名录",
            )
        if registry_period is None:
            return Permission(None, None)
        found = self.entries.get(uscc)
        if found is None:
            return Permission(
                None,
                registry_period,
                f"{uscc} is not in the institution registry of {registry_period}; it may not "
                f"submit {submission_type} / 该机构未在 {registry_period} 机构名录中登记，"
                f"不得报送 {submission_type}",
            )
        role, status, reporting = found
        if not reporting:
            return Permission(
                role,
                registry_period,
                f"{uscc} is {status} in the institution registry of {registry_period}; it may "
                f"not submit {submission_type} / 该机构在 {registry_period} 机构名录中状态为 "
                f"{status}，不得报送 {submission_type}",
            )
        return self._decide(role, registry_period, uscc, submission_type)

    @staticmethod
    def _decide(role: str, registry_period: str | None, uscc: str, submission_type: str):
        if submission_type in ROLE_TYPES[role]:
            return Permission(role, registry_period)
        return Permission(
            role,
            registry_period,
            f"{uscc} is a {role}; a {role} does not submit {submission_type} / "
            f"该机构角色为 {role}，不报送 {submission_type}",
        )
