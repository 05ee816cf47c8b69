"""The institution's side of the hybrid deployment: pull the platform's signed model package and credit policy and
install them for decisioning on the institution's own premises, then push the local decisions' figures and their
outcomes back to the platform for monitoring.

A pull installs nothing unless the bundle is signed by the key the institution pinned; a push sends batches in a
fixed order under an Idempotency-Key made from the batch itself and records each delivered batch locally, so a push
stopped anywhere resumes without sending a decision twice and a batch the platform took but whose answer was lost
replays as the same response. The applicant's data never leaves: only `PushedDecision`'s fields do.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError as ModelError

from openice.decisioning.hybrid import BATCH, PushedOutcome, Pushes
from openice.decisioning.policy import Policy, TypedPolicy
from openice.errors import Conflict, OpeniceError, Unavailable, ValidationError
from openice.scoring.package import promote, register, registry_package, registry_versions, verify
from openice.scoring.signing import read_bundle, unpack_model, verified
from openice.storage.uow import UnitsOfWork

__all__ = ["Platform", "pull", "push", "read_outcomes"]

REGISTRY, POLICY, PULLED = "registry", "policy.json", "pulled.json"
BODY_BUDGET = 512 * 1024  # bytes of one push, well under the platform's default body limit (1 MiB)


@dataclass(frozen=True)
class Platform:
    """Where the platform answers and the institution's API key for it."""

    url: str
    key: str
    timeout: float = 60.0
    transport: httpx.BaseTransport | None = None  # tests pass the app in process

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url.rstrip("/"),
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=self.timeout,
            transport=self.transport,
        )


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The platform's answer, or one line saying why there is none: unreachable, or its problem's detail."""
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        raise Unavailable(f"cannot reach the platform at {client.base_url}: {error}", field="platform") from None
    if response.status_code >= 400:
        try:
            problem = response.json()
            detail, field = problem.get("detail", response.text), problem.get("field")
        except ValueError:
            detail, field = response.text[:200], None
        refused = Conflict if response.status_code == 409 else ValidationError
        raise refused(f"the platform refused {method} {path} ({response.status_code}): {detail}", field=field)
    return response


def _bundle(client: httpx.Client, path: str, kind: str, pin: str, params: dict[str, Any]) -> dict[str, Any]:
    """A bundle the pinned key signed, read; anything else refused before a byte of it is used."""
    response = _call(client, "GET", path, params=params)
    signature = response.headers.get("Openice-Signature")
    if not signature:
        raise ValidationError(f"the platform sent the {kind} bundle unsigned: refused, nothing installed", field=kind)
    verified(pin, kind, response.content, signature)
    return read_bundle(kind, response.content)


def pull(platform: Platform, pin: str, into: Path, version: int | None = None) -> dict[str, Any]:
    """Verify and install the platform's model package (its champion unless `version`) and policy under `into`:
    the package becomes the champion of the local registry `into/registry`, the policy `into/policy.json`. Pulling
    what is installed already changes nothing."""
    with platform.client() as client:
        model = _bundle(client, "/v1/hybrid/package", "model", pin, {"version": version} if version else {})
        policy = _bundle(client, "/v1/hybrid/policy", "policy", pin, {})
    checked = Policy.from_json(policy["policy"])
    if checked.policy_hash != policy.get("policy_hash"):
        raise ValidationError("the policy bundle's policy does not hash to its policy hash", field="policy")
    registry = into / REGISTRY
    entries, champion = registry_versions(registry)
    local = next((e["version"] for e in entries if e["package_hash"] == model["package_hash"]), None)
    if local is None:
        unpacked = unpack_model(model, into)
        try:
            local = register(unpacked, registry, champion=True)
        finally:
            shutil.rmtree(unpacked)
    elif local != champion:
        promote(registry, local)
    verify(registry_package(registry, local)[0])
    typed = TypedPolicy.of(checked).model_dump(mode="json", exclude_none=True)  # as `--policy` reads a file
    (into / POLICY).write_text(json.dumps(typed, indent=1, sort_keys=True) + "\n")
    pulled = {
        "platform": platform.url,
        "platform_version": model["version"],
        "package_hash": model["package_hash"],
        "local_version": local,
        "policy_hash": policy["policy_hash"],
        "pinned_key": pin,
    }
    (into / PULLED).write_text(json.dumps(pulled, indent=1, sort_keys=True) + "\n")
    return {**pulled, "model": str(registry), "policy": str(into / POLICY)}


def read_outcomes(path: Path) -> list[PushedOutcome]:
    """Outcomes from a CSV file with the columns reference, months_on_book and bad (1/0, true/false, bad/good)."""
    words = {"1": True, "true": True, "bad": True, "0": False, "false": False, "good": False}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as error:
        raise ValidationError(f"cannot read {path}: {error.strerror or error}", field="outcomes") from None
    out = []
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        bad = words.get(str(row.get("bad", "")).strip().lower())
        if bad is None:
            raise ValidationError(f"line {n}: bad must be 1/0, true/false or bad/good", field=str(path))
        try:
            out.append(
                PushedOutcome(reference=row.get("reference", ""), months_on_book=row.get("months_on_book"), bad=bad)  # type: ignore[arg-type]
            )
        except ModelError as error:
            first = error.errors()[0]
            raise ValidationError(f"line {n}: {first['loc'][0]}: {first['msg']}", field=str(path)) from None
    return out


def _batch_key(kind: str, documents: list[dict[str, Any]]) -> str:
    """The same batch always gets the same key, so a retried batch replays instead of counting twice."""
    text = json.dumps(documents, sort_keys=True, separators=(",", ":"))
    return f"hybrid-{kind}-{hashlib.sha256(text.encode()).hexdigest()[:40]}"


def within(documents: list[dict[str, Any]], budget: int = BODY_BUDGET) -> list[dict[str, Any]]:
    """The first documents whose JSON fits in `budget` bytes (at least one), so a batch of long reasons stays
    under the platform's body limit; which ones is fixed by their order, so a resumed push cuts the same batch."""
    size = 0
    for n, document in enumerate(documents):
        size += len(json.dumps(document, separators=(",", ":")).encode()) + 1
        if size > budget and n:
            return documents[:n]
    return documents


def push(
    platform: Platform,
    units: UnitsOfWork,
    outcomes: list[PushedOutcome] | None = None,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
    book: bool = True,
) -> dict[str, int]:
    """Push the decisions not pushed yet, then the outcomes not pushed yet (those `outcomes` given, and with `book`
    those of the loans the local database books), `batch` at a time; returns how many of each were delivered in
    this run and how many of them were new to the platform (`stored`)."""
    pushes = Pushes(units)
    done = {"decisions": 0, "outcomes": 0, "stored": 0}
    with platform.client() as client:

        def deliver(kind: str, documents: list[dict[str, Any]]) -> None:
            done["stored"] += _send(client, f"{kind}s", documents)["stored"]
            pushes.pushed(kind, [(d["reference"], d.get("months_on_book", 0)) for d in documents])
            done[f"{kind}s"] += len(documents)
            if progress:
                progress(f"{kind}s", done[f"{kind}s"])

        while documents := within(pushes.decisions(batch)):
            deliver("decision", documents)
        pending = pushes.outcomes([*(outcomes or []), *(pushes.book_outcomes() if book else [])])
        while documents := within(pending[:batch]):
            deliver("outcome", documents)
            pending = pending[len(documents) :]
    return done


def _send(client: httpx.Client, kind: str, documents: list[dict[str, Any]]) -> dict[str, int]:
    answer = _call(
        client,
        "POST",
        f"/v1/hybrid/{kind}",
        json={kind: documents},
        headers={"Idempotency-Key": _batch_key(kind, documents)},
    ).json()
    if not isinstance(answer, dict) or "stored" not in answer:
        raise OpeniceError(f"the platform answered the {kind} push with {answer!r}", field="platform")
    return answer
