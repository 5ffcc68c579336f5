"""Provider secrets: Fernet encryption, key rotation, plain values typed by an admin."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from connector.errors import ConfigurationError
from connector.secret_box import SecretBox, looks_encrypted

TOKEN = "0123456789abcdef0123456789abcdef"  # the shape of a Twilio auth token


def _key() -> str:
    return Fernet.generate_key().decode()


def test_encrypted_value_does_not_contain_the_plain_text_and_decrypts() -> None:
    box = SecretBox([SecretStr(_key())])
    stored = box.encrypt(TOKEN)
    assert TOKEN not in stored
    assert looks_encrypted(stored)
    assert box.decrypt(stored) == TOKEN
    assert box.open(stored).rewrite is None


def test_plain_value_typed_by_an_admin_is_returned_with_its_encryption() -> None:
    box = SecretBox([_key()])
    opened = box.open(TOKEN)
    assert opened.plain == TOKEN
    assert opened.rewrite is not None and TOKEN not in opened.rewrite
    assert box.open(opened.rewrite).plain == TOKEN
    assert box.open(opened.rewrite).rewrite is None


def test_token_under_an_old_key_is_re_encrypted_under_the_new_one() -> None:
    old, new = _key(), _key()
    stored = SecretBox([old]).encrypt(TOKEN)
    opened = SecretBox([new, old]).open(stored)
    assert opened.plain == TOKEN and opened.rewrite is not None
    assert SecretBox([new]).decrypt(opened.rewrite) == TOKEN


def test_token_under_a_dropped_key_is_a_configuration_error_without_the_value() -> None:
    stored = SecretBox([_key()]).encrypt(TOKEN)
    with pytest.raises(ConfigurationError, match="not in CONNECTOR_SECRET_KEYS") as caught:
        SecretBox([_key()]).open(stored)
    assert stored not in str(caught.value)


def test_no_keys_or_a_bad_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="CONNECTOR_SECRET_KEYS"):
        SecretBox([]).encrypt(TOKEN)
    with pytest.raises(ConfigurationError, match="CONNECTOR_SECRET_KEYS"):
        SecretBox([]).open(TOKEN)
    with pytest.raises(ConfigurationError, match="not a Fernet key"):
        SecretBox(["not-a-key"])


def test_repr_and_opened_never_show_secrets() -> None:
    key = _key()
    box = SecretBox([key])
    assert key not in repr(box)
    assert TOKEN not in repr(box.open(TOKEN))


@pytest.mark.parametrize("value", ["", "hello", TOKEN, "gAAAAA", "gAAAAA!!not base64", "é"])
def test_ordinary_strings_do_not_look_encrypted(value: str) -> None:
    assert not looks_encrypted(value)
