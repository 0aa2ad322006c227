"""What an exchange summary may keep: no token in headers, bodies, URLs or error text."""

from shared.salesforce.redact import redact_body, redact_headers, redact_text, redact_url


def test_secret_headers_keep_only_the_scheme():
    headers = redact_headers(
        {"Authorization": "Bearer 00Dxx!secret", "X-SFDC-Session": "00Dxx!secret", "Accept": "*/*"}
    )
    assert headers == {
        "Authorization": "Bearer [redacted]",
        "X-SFDC-Session": "[redacted]",
        "Accept": "*/*",
    }


def test_free_text_loses_bearer_tokens_and_secret_pairs_only():
    text = redact_text(
        "ConnectionError: /services/oauth2/token?refresh_token=5Aep861&grant_type=refresh_token "
        "Authorization: Bearer 00Dxx!secret errorCode=INVALID_FIELD"
    )
    assert "5Aep861" not in text and "00Dxx!secret" not in text
    assert "refresh_token=[redacted]" in text and "Bearer [redacted]" in text
    assert "errorCode=INVALID_FIELD" in text and "grant_type=refresh_token" in text


def test_bodies_and_urls():
    body = redact_body('{"access_token": "abc", "instance_url": "https://x"}')
    assert "abc" not in body and "https://x" in body
    assert "s3cr3t" not in redact_body("grant_type=refresh_token&client_secret=s3cr3t")
    assert (
        redact_url("https://x/cb?code=aPrx&state=1") == "https://x/cb?code=%5Bredacted%5D&state=1"
    )
    assert len(redact_body("x" * 20000)) < 8 * 1024 + 20
