"""Staff passwords: scrypt hashes in one self-describing string.

Encoded form: ``scrypt$n$r$p$salt_b64$hash_b64`` (standard base64, unpadded).
Carrying the parameters in the string lets them be raised later: a hash made
with weaker ones still verifies, and :func:`needs_rehash` tells the login path
to store a fresh hash while it holds the clear password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import unicodedata

from rooms.errors import Invalid

#: scrypt cost parameters: N=2**14, r=8, p=1 is OWASP's minimum recommendation
#: for scrypt (Password Storage Cheat Sheet), i.e. 16 MiB of memory and roughly
#: 60 ms of CPU per hash on these machines (measured): memory-hard enough to make GPU
#: guessing expensive, cheap enough for a login.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
#: 16 random bytes of salt: unique per hash, so equal passwords hash differently.
SALT_BYTES = 16
#: 32 bytes of derived key: the full output of the SHA-256 inside scrypt.
KEY_BYTES = 32

#: NIST SP 800-63B and the product's help pages: at least 8 characters.
MIN_PASSWORD_LENGTH = 8
#: An upper bound only so that nobody can make the server hash megabytes;
#: far above any pass phrase (NIST asks to allow at least 64).
MAX_PASSWORD_LENGTH = 1024

#: Parameters read back from a stored hash are bounded before use, so that a
#: corrupt or hostile row cannot make verification allocate gigabytes.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16

_PREFIX = "scrypt"
# A fixed salt used only to spend the same time when there is no account to check.
_DUMMY_SALT = b"\x00" * SALT_BYTES


def check_password_rules(password: str) -> None:
    """Raise Invalid unless ``password`` is MIN..MAX_PASSWORD_LENGTH characters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """Check the password rules, then return its encoded scrypt hash.

    ``n``, ``r`` and ``p`` exist so that tests can hash cheaply; production
    code keeps the defaults.
    """
    check_password_rules(password)
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, n, r, p)
    return "$".join((_PREFIX, str(n), str(r), str(p), _b64(salt), _b64(key)))


def verify_password(password: str, encoded: str | None) -> bool:
    """Whether ``password`` matches ``encoded``, compared in constant time.

    A malformed ``encoded`` verifies nothing (False). With ``encoded=None``
    (no such account) a hash is still computed and False returned, so that a
    login for an unknown email takes as long as one for a known email.
    """
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    parsed = _parse(encoded) if encoded is not None else None
    if parsed is None:
        _derive(password, _DUMMY_SALT, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        return False
    n, r, p, salt, expected = parsed
    actual = _derive(password, salt, n, r, p, dklen=len(expected))
    return hmac.compare_digest(actual, expected)


def needs_rehash(encoded: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> bool:
    """Whether ``encoded`` was made with parameters other than the current ones
    (or cannot be read): the login path then stores a fresh hash."""
    parsed = _parse(encoded)
    if parsed is None:
        return True
    old_n, old_r, old_p, salt, key = parsed
    return (old_n, old_r, old_p) != (n, r, p) or len(salt) != SALT_BYTES or len(key) != KEY_BYTES


def _derive(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = KEY_BYTES) -> bytes:
    # NFKC so that the same password typed on keyboards that compose accents
    # differently still matches (NIST SP 800-63B, 5.1.1.2).
    secret = unicodedata.normalize("NFKC", password).encode("utf-8")
    # scrypt needs 128 * n * r bytes; OpenSSL's default ceiling (32 MiB) would
    # refuse n=2**15 and above, so the ceiling follows the parameters.
    maxmem = 128 * n * r * (p + 1) + 1024 * 1024
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != _PREFIX:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        return None
    power_of_two = n > 1 and n & (n - 1) == 0
    if not (power_of_two and n <= _MAX_N and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return None
    if not salt or not 16 <= len(key) <= 64:
        return None
    return n, r, p, salt, key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
