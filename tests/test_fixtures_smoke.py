def test_linked_account_fixture(linked_account, runtime):
    from shared.models import Account

    account_id = linked_account()
    with runtime.Session() as session:
        account = session.get(Account, account_id)
        assert account.status == "active"
        assert account.instance_url.startswith("http://127.0.0.1:")
        assert account.organization_id.startswith("00D")
        assert account.token_expires_at > account.token_issued_at
        assert runtime.crypto.decrypt(account.access_token_enc)
