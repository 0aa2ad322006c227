import pytest
from cryptography.fernet import Fernet

from shared.crypto import Crypto, DecryptionError


def test_round_trip_and_rotation():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = Crypto([old])
    token = before.encrypt("s3cret")
    assert "s3cret" not in token
    after = Crypto([new, old])
    assert after.decrypt(token) == "s3cret"
    rotated = after.rotate(token)
    assert Crypto([new]).decrypt(rotated) == "s3cret"
    with pytest.raises(DecryptionError):
        Crypto([old]).decrypt(rotated)


def test_wrong_key_is_a_clear_error_not_garbage():
    token = Crypto([Fernet.generate_key().decode()]).encrypt("x")
    with pytest.raises(DecryptionError, match="FORCEBOT_ENCRYPTION_KEYS"):
        Crypto([Fernet.generate_key().decode()]).decrypt(token)
