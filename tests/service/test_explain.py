"""``explain=true`` and 503 answers say, per candidate, why it was or was not chosen."""

from __future__ import annotations

from .conftest import Api


async def test_explain_lists_every_selected_provider_with_its_role_and_reasons(api: Api) -> None:
    api.add_provider("primary", priority=9, capabilities=["chat"])
    api.add_provider("backup", priority=5, capabilities=["chat"])
    api.add_provider("spare", priority=1, capabilities=["chat"])
    api.add_provider("off", priority=9, capabilities=["chat"], disabled=True)
    api.add_provider("embedder", capabilities=["embeddings"])
    api.add_provider("other-team", capabilities=["chat"], labels={"team": "b"})
    api.add_policy("p", strategy="Priority", default=True,
                   providerSelector={"matchExpressions": [
                       {"key": "team", "operator": "DoesNotExist"}]},
                   failover={"maxFallbacks": 1})
    body = await api.route_ok(capability="chat", explain=True)
    assert body["provider"]["name"] == "primary"
    candidates = {c["name"]: c for c in body["candidates"]}
    assert set(candidates) == {"primary", "backup", "spare", "off", "embedder"}
    assert {n: (c["role"], c["reasons"]) for n, c in candidates.items()} == {
        "primary": ("primary", []),
        "backup": ("fallback", []),
        "spare": ("standby", []),
        "off": ("excluded", ["Disabled"]),
        "embedder": ("excluded", ["MissingCapability"]),
    }
    assert candidates["embedder"]["detail"] == "lacks chat"
    assert candidates["primary"]["detail"] == "ranked by Priority"
    assert all(c["namespace"] == "default" for c in candidates.values())


async def test_without_explain_there_are_no_candidates(api: Api) -> None:
    api.add_provider("a")
    api.add_policy("p", default=True)
    assert "candidates" not in await api.route_ok()
    assert "candidates" not in await api.route_ok(explain=False)


async def test_503_names_each_candidates_reasons(api: Api) -> None:
    api.add_provider("down", disabled=True, models=["m1"])
    api.add_provider("busy", maxConcurrent=1, models=["m1"])
    api.add_provider("wrong-model", models=["m2"])
    api.add_provider("cooling", models=["m1"])
    api.add_policy("p", default=True)
    await api.route_ok(model="m1")  # fills busy
    await api.report(provider="cooling", outcome="rate_limited", retryAfterSeconds=5)
    response = await api.route(model="m1")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "no_provider_available"
    assert "no provider available under policy default/p" in error["message"]
    assert error["details"]["policy"] == "p"
    assert error["details"]["namespace"] == "default"
    reasons = {c["name"]: c["reasons"] for c in error["details"]["candidates"]}
    assert reasons == {"down": ["Disabled"], "busy": ["AtMaxConcurrent"],
                       "wrong-model": ["ModelNotServed"], "cooling": ["CoolingDown"]}
    details = {c["name"]: c["detail"] for c in error["details"]["candidates"]}
    assert details["busy"] == "1/1 in flight"
    assert details["wrong-model"] == "does not serve model m1"
    assert error["details"]["selected"] == 4
    assert error["details"]["excluded"] == {"AtMaxConcurrent": 1, "CoolingDown": 1,
                                            "Disabled": 1, "ModelNotServed": 1}
    assert error["details"]["truncated"] is False


async def test_503_over_many_providers_explains_the_first_twenty_and_counts_all(
        api: Api) -> None:
    for i in range(60):
        api.add_provider(f"p{i:02d}", disabled=True)
    api.add_policy("p", default=True)
    response = await api.route()
    assert response.status_code == 503
    details = response.json()["error"]["details"]
    assert [c["name"] for c in details["candidates"]] == [f"p{i:02d}" for i in range(20)]
    assert details["selected"] == 60
    assert details["excluded"] == {"Disabled": 60}
    assert details["truncated"] is True
    assert len(response.content) < 4096


async def test_a_policy_that_selects_nothing_answers_503(api: Api) -> None:
    api.add_provider("a", labels={"tier": "gold"})
    api.add_policy("p", default=True, providerSelector={"matchLabels": {"tier": "silver"}})
    response = await api.route()
    assert response.status_code == 503
    assert response.json()["error"]["details"]["candidates"] == []
    assert "selects no providers" in response.json()["error"]["message"]
