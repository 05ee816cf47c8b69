"""How this database is deployed, stored in it so every process that opens it agrees: SaaS (the platform serving many
institutions, each a tenant) or on-premise (one institution running openice alone on its own database, with no
platform tenant above it). A database that never stored a mode is SaaS, as every database was before modes existed.

On-premise admits exactly its institution: onboarding or registering any other is refused, so every loan is funded by
it and routing has no one else to go to. The mode is chosen once (`openice db init --mode`); turning an on-premise
book into a platform's, or one institution's book into another's, is refused rather than mixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, insert, select, update

from openice.clock import now_iso
from openice.errors import Conflict, ValidationError
from openice.storage import decisioning_tables, deployment_tables


class Mode(StrEnum):
    SAAS = "saas"
    ON_PREMISE = "on-premise"


@dataclass(frozen=True)
class Deployment:
    mode: Mode
    institution: str | None = None  # on-premise: the one institution

    def admit(self, code: str) -> None:
        """Refuse an institution this deployment cannot hold: on-premise holds its own and no other."""
        if self.mode is Mode.ON_PREMISE and code != self.institution:
            raise Conflict(
                f"this database runs on-premise for {self.institution}: it holds no other institution",
                field="institution",
            )

    def describe(self) -> str:
        return f"on-premise for {self.institution}" if self.mode is Mode.ON_PREMISE else "SaaS"


SAAS = Deployment(Mode.SAAS)
_row = deployment_tables.deployment


def read(conn: Connection) -> Deployment:
    """The stored deployment (SaaS when none is stored)."""
    row = conn.execute(select(_row.c.mode, _row.c.institution_code).where(_row.c.id == 1)).first()
    return SAAS if row is None else Deployment(Mode(row.mode), row.institution_code)


def asked(mode: Mode, institution: str | None) -> Deployment:
    """The deployment a person asks for, checked before anything is opened: on-premise, and only on-premise, names
    its institution."""
    if mode is Mode.SAAS and institution is not None:
        raise ValidationError("only an on-premise deployment names its institution", field="institution")
    if mode is Mode.ON_PREMISE and not institution:
        raise ValidationError("an on-premise deployment names its one institution", field="institution")
    return Deployment(mode, institution)


def choose(conn: Connection, wanted: Deployment) -> Deployment:
    """Store the deployment `db init --mode` asks for, or confirm the one stored; refuse a change of mode or of the
    on-premise institution, and on-premise over a book that already holds other institutions."""
    mode, institution = wanted.mode, wanted.institution
    stored = conn.execute(select(_row.c.id).where(_row.c.id == 1)).first() is not None
    current = read(conn)
    if current == wanted and stored:
        return current
    if current.mode is Mode.ON_PREMISE:
        raise Conflict(
            f"this database runs on-premise for {current.institution}: it cannot become {wanted.describe()}",
            field="mode" if mode is not current.mode else "institution",
        )
    if mode is Mode.ON_PREMISE:
        codes = decisioning_tables.institutions.c.code
        others = conn.execute(select(codes).where(codes != institution).order_by(codes)).scalars().all()
        if others:
            raise Conflict(
                f"this database holds institutions {', '.join(others)}: on-premise runs {institution} alone",
                field="mode",
            )
    values = dict(mode=mode.value, institution_code=institution, set_at=now_iso())
    if stored:
        conn.execute(update(_row).where(_row.c.id == 1).values(**values))
    else:
        conn.execute(insert(_row).values(id=1, **values))
    return wanted
