"""Password hashing: argon2id.

Parameters follow OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane) rather than argon2-cffi's
default (64 MiB, 4 lanes): every login attempt, even for an unknown email, costs one hash, and at
64 MiB a few dozen concurrent logins took a small server past 1.7 GB. argon2 writes its parameters
into each hash, so hashes made with the old parameters still verify; `needs_rehash` tells the login to
store a fresh hash once the password has been checked.
"""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's (checked after a successful login)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False
