"""An institution's own API keys (`/v1/institutions/{code}/keys`): its admins list, create, rotate and revoke the
institution keys of their own institution, and nothing else; every action is audited; another institution's key is
a 404 and stays as it was."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import World, bearer

OWN = "/v1/institutions/INST-A/keys"


def audit(world: World, action: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = world.call("operator", "GET", "/v1/audit", params={"action": action}).json()["items"]
    return found


def works(world: World, secret: str) -> int:
    """The status of an institution's read with this secret: 200 while the key is live, 401 once it is not."""
    return int(world.client.get("/v1/offers", headers=bearer(secret)).status_code)


def test_an_institution_makes_a_key_of_its_own_and_never_of_another_role(world: World) -> None:
    made = world.call("INST-A", "POST", OWN, key="k1", json={"label": "loan system", "role": "operator"})
    assert made.status_code == 201, made.text
    key = made.json()
    assert (key["role"], key["tenant"], key["label"]) == ("institution", "INST-A", "loan system")  # not the body's
    assert key["secret"] and works(world, key["secret"]) == 200
    seen = world.client.get("/v1/institutions", headers=bearer(key["secret"])).json()["items"]
    assert [i["code"] for i in seen] == ["INST-A"]  # the new key sees what its institution sees, no more
    (row,) = [a for a in audit(world, "api_key.created") if a["resource"] == key["id"]]
    assert (row["role"], row["tenant"], row["detail"]) == (
        "institution",
        "INST-A",
        {"role": "institution", "tenant": "INST-A"},
    )


def test_the_list_holds_the_institutions_own_keys_and_never_a_secret(world: World) -> None:
    world.call("INST-A", "POST", OWN, key="k1", json={"label": "one"})
    world.call("operator", "POST", "/v1/api-keys", key="desk", json={"role": "collections", "tenant": "INST-A"})
    listed = world.call("INST-A", "GET", OWN).json()["items"]
    assert {(k["role"], k["tenant"]) for k in listed} == {("institution", "INST-A")}
    assert len(listed) == 2  # the world's key and the new one: not its collections desk's, not INST-B's
    assert all("secret" not in k for k in listed)
    assert world.call("operator", "GET", OWN).json()["items"] == listed  # an operator sees the same


def test_a_rotation_keeps_the_old_secret_for_the_overlap_and_a_revocation_stops_both(world: World) -> None:
    key = world.call("INST-A", "POST", OWN, key="k1", json={"label": "one"}).json()
    rotated = world.call("INST-A", "POST", f"{OWN}/{key['id']}/rotation", key="r1")
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["id"] == key["id"] and new["secret"] != key["secret"] and new["previous_until"]
    assert works(world, key["secret"]) == 200 and works(world, new["secret"]) == 200  # the default 24-hour overlap
    assert [a["resource"] for a in audit(world, "api_key.rotated")] == [key["id"]]
    revoked = world.call("INST-A", "POST", f"{OWN}/{key['id']}/revocation")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert works(world, key["secret"]) == 401 and works(world, new["secret"]) == 401
    assert [a["resource"] for a in audit(world, "api_key.revoked")] == [key["id"]]
    again = world.call("INST-A", "POST", f"{OWN}/{key['id']}/revocation")
    assert again.status_code == 422 and again.json()["field"] == "key_id"


def test_another_institutions_keys_are_missing_and_stay_as_they_were(world: World) -> None:
    theirs = world.call("INST-B", "POST", "/v1/institutions/INST-B/keys", key="b1", json={"label": "b"}).json()
    before = world.call("operator", "GET", "/v1/institutions/INST-B/keys").json()
    desk = world.call("operator", "POST", "/v1/api-keys", key="desk", json={"role": "collections", "tenant": "INST-A"})
    for method, path in (
        ("GET", "/v1/institutions/INST-B/keys"),
        ("POST", "/v1/institutions/INST-B/keys"),
        ("POST", f"/v1/institutions/INST-B/keys/{theirs['id']}/rotation"),
        ("POST", f"/v1/institutions/INST-B/keys/{theirs['id']}/revocation"),
        ("POST", f"{OWN}/{theirs['id']}/rotation"),  # B's key through A's own path
        ("POST", f"{OWN}/{theirs['id']}/revocation"),
        ("POST", f"{OWN}/{desk.json()['id']}/rotation"),  # A's collections desk's key: not an institution key
        ("POST", f"{OWN}/{desk.json()['id']}/revocation"),
    ):
        answer = world.call("INST-A", method, path, key=f"probe-{len(path)}-{path[-3:]}", json={"label": "x"})
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    assert world.call("operator", "GET", "/v1/institutions/INST-B/keys").json() == before
    assert works(world, theirs["secret"]) == 200


def test_borrowers_and_collections_desks_may_not(world: World) -> None:
    for who in ("borrower1", "collections"):
        assert world.call(who, "GET", OWN).status_code == 403
        assert world.call(who, "POST", OWN, key=f"{who}-k", json={"label": "x"}).status_code == 403


def test_a_label_too_long_is_refused_and_makes_nothing(world: World) -> None:
    before = world.call("INST-A", "GET", OWN).json()["items"]
    refused = world.call("INST-A", "POST", OWN, key="long", json={"label": "x" * 201})
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    assert world.call("INST-A", "GET", OWN).json()["items"] == before
