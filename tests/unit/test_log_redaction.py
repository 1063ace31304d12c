from observability.logging import redact


def test_secrets_and_personal_data_are_redacted_by_key_at_any_depth_of_one_dict():
    event = {
        "event": "x",
        "client_secret": "s3cret",
        "email": "a@b.c",
        "invoice": "INV-1",
        "auth": {"access_token": "tok", "scope": "read"},
        "kantata_password": "pw",
    }
    redacted = redact(None, "info", event)
    assert redacted["client_secret"] == "[redacted]" and redacted["email"] == "[redacted]"
    assert redacted["kantata_password"] == "[redacted]"
    assert redacted["auth"] == {"access_token": "[redacted]", "scope": "read"}
    assert redacted["invoice"] == "INV-1"
