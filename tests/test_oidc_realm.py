"""The Keycloak realm export (deploy/keycloak/pulih-realm.json) is JSON Keycloak imports and says
what the code expects: Pulih's roles, the claims the principal is read from, a public dashboard
client with PKCE, and a confidential service client per service naming its service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pulih.kit.auth import DEFAULT_AUDIENCE, Principal, Role, principal_from

REALM = Path(__file__).resolve().parents[1] / "deploy" / "keycloak" / "pulih-realm.json"
SERVICES = {"outreach", "rehab", "referral", "reporting"}


@pytest.fixture(scope="module")
def realm() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(REALM.read_text())
    return loaded


def test_the_realm_roles_are_the_codes_roles(realm: dict[str, Any]) -> None:
    assert {role["name"] for role in realm["roles"]["realm"]} == {role.value for role in Role}


def test_the_pulih_scope_maps_the_claims_the_principal_reads(realm: dict[str, Any]) -> None:
    [scope] = [s for s in realm["clientScopes"] if s["name"] == "pulih"]
    mappers = {m["protocolMapper"]: m for m in scope["protocolMappers"]}
    attributes = {
        m["config"]["user.attribute"]: m["config"]["claim.name"]
        for m in scope["protocolMappers"]
        if m["protocolMapper"] == "oidc-usermodel-attribute-mapper"
    }
    assert attributes == {"regency": "regency", "unit_id": "unit_id", "clinic_id": "clinic_id"}
    assert set(attributes.values()) <= set(Principal.model_fields)
    assert mappers["oidc-audience-mapper"]["config"]["included.custom.audience"] == DEFAULT_AUDIENCE
    assert mappers["oidc-usermodel-realm-role-mapper"]["config"]["claim.name"] == "roles"
    assert "pulih" in realm["defaultDefaultClientScopes"]
    profile = json.loads(
        realm["components"]["org.keycloak.userprofile.UserProfileProvider"][0]["config"][
            "kc.user.profile.config"
        ][0]
    )
    assert set(attributes) <= {a["name"] for a in profile["attributes"]}


def test_a_token_as_the_realm_makes_it_maps_to_a_principal(realm: dict[str, Any]) -> None:
    """The claims the realm's mappers give an agent become the kit's principal."""
    claims = {
        "sub": "f3a1",
        "aud": [DEFAULT_AUDIENCE, "account"],
        "roles": ["default-roles-pulih", "offline_access", "agent"],
        "realm_access": {"roles": ["default-roles-pulih", "offline_access", "agent"]},
        "regency": "3301",
        "unit_id": "0b8e2c1e-4a55-4f1e-9d8c-3f3a2b1c0d9e",
    }
    principal = principal_from(claims)
    assert (principal.role, principal.regency, str(principal.unit_id)) == (
        Role.AGENT,
        "3301",
        claims["unit_id"],
    )


def test_the_dashboard_is_a_public_client_with_pkce(realm: dict[str, Any]) -> None:
    [dashboard] = [c for c in realm["clients"] if c["clientId"] == "pulih-dashboard"]
    assert dashboard["publicClient"] is True and dashboard["standardFlowEnabled"] is True
    assert dashboard["attributes"]["pkce.code.challenge.method"] == "S256"
    assert not dashboard["implicitFlowEnabled"] and not dashboard["directAccessGrantsEnabled"]
    assert "secret" not in dashboard


def test_each_service_has_a_confidential_client_credentials_client(realm: dict[str, Any]) -> None:
    clients = {c["clientId"]: c for c in realm["clients"] if c.get("serviceAccountsEnabled")}
    assert set(clients) == {f"pulih-{name}" for name in SERVICES}
    users = {u["serviceAccountClientId"]: u for u in realm["users"] if "serviceAccountClientId" in u}
    for client_id, client in clients.items():
        assert client["publicClient"] is False and not client["standardFlowEnabled"]
        [named] = [m for m in client["protocolMappers"] if m["config"].get("claim.name") == "service"]
        assert f"pulih-{named['config']['claim.value']}" == client_id
        assert users[client_id]["realmRoles"] == [Role.SERVICE.value]
        assert users[client_id]["attributes"]["regency"]
    # only referral may ask outreach for an identity
    holders = [c for c in clients.values() if "outreach.identity" in c["optionalClientScopes"]]
    assert [c["clientId"] for c in holders] == ["pulih-referral"]
