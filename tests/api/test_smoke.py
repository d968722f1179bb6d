def test_create_and_list_customer(client, workspace):
    r = client.post("/v1/customers", json={"name": "Acme"}, headers=workspace.headers)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert cid.startswith("cus_")
    r = client.get("/v1/customers", headers=workspace.headers)
    assert [c["id"] for c in r.json()["data"]] == [cid]
