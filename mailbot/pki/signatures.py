"""Signature verification dispatched by algorithm OID: GOST in our code, RSA/ECDSA via pyca.

The signed bytes are hashed here, in one pass, so that a 50 MB CRL body can be
given as a memoryview without copies; the public-key operation then works on
the digest (pyca through ``Prehashed``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from asn1crypto import algos
from cryptography.exceptions import InvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm as PycaUnsupported
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa, utils

from mailbot.pki.errors import SignatureError, UnsupportedAlgorithmError
from mailbot.pki.gost import ec as gost_ec
from mailbot.pki.gost import hashing
from mailbot.pki.gost.keys import (
    KEY_GOST2001,
    KEY_GOST2012_256,
    KEY_GOST2012_512,
    decode_public_key,
    decode_signature,
    digest_to_int,
)


@dataclass(frozen=True)
class GostSignatureAlgorithm:
    """A GOST signature algorithm: which hash, which key algorithm."""

    name: str
    hash_name: str
    key_algorithm: str


GOST_SIGNATURE_ALGORITHMS: dict[str, GostSignatureAlgorithm] = {
    "1.2.643.7.1.1.3.2": GostSignatureAlgorithm(
        "GOST R 34.10-2012 256 / 34.11-2012", hashing.STREEBOG_256, KEY_GOST2012_256
    ),
    "1.2.643.7.1.1.3.3": GostSignatureAlgorithm(
        "GOST R 34.10-2012 512 / 34.11-2012", hashing.STREEBOG_512, KEY_GOST2012_512
    ),
    "1.2.643.2.2.3": GostSignatureAlgorithm(
        "GOST R 34.10-2001 / 34.11-94", hashing.GOST94, KEY_GOST2001
    ),
}

_RSA_PKCS1 = {
    "1.2.840.113549.1.1.5": "sha1",
    "1.2.840.113549.1.1.14": "sha224",
    "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
}
_RSA_PSS = "1.2.840.113549.1.1.10"
_ECDSA = {
    "1.2.840.10045.4.1": "sha1",
    "1.2.840.10045.4.3.1": "sha224",
    "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
}
_ED25519 = "1.3.101.112"
_ED448 = "1.3.101.113"

_PYCA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

#: Signature algorithm OIDs → display names (for reports).
SIGNATURE_ALGORITHM_NAMES: dict[str, str] = {
    **{oid: alg.name for oid, alg in GOST_SIGNATURE_ALGORITHMS.items()},
    **{oid: f"RSA PKCS#1 v1.5 / {h.upper()}" for oid, h in _RSA_PKCS1.items()},
    _RSA_PSS: "RSASSA-PSS",
    **{oid: f"ECDSA / {h.upper()}" for oid, h in _ECDSA.items()},
    _ED25519: "Ed25519",
    _ED448: "Ed448",
}


def _sha(name: str, data: bytes | memoryview) -> bytes:
    return hashlib.new(name, data).digest()


def verify_signature(
    spki: bytes,
    algorithm_oid: str,
    algorithm_params: bytes | None,
    signature: bytes,
    data: bytes | memoryview,
) -> bool:
    """Whether ``signature`` over ``data`` verifies with the SubjectPublicKeyInfo ``spki``.

    Returns False for a signature that does not verify; raises
    :class:`UnsupportedAlgorithmError` for algorithms we do not implement and
    :class:`SignatureError` when the key or signature cannot even be decoded.
    """
    gost = GOST_SIGNATURE_ALGORITHMS.get(algorithm_oid)
    if gost is not None:
        return _verify_gost(gost, spki, signature, data)
    return _verify_pyca(spki, algorithm_oid, algorithm_params, signature, data)


def _verify_gost(
    alg: GostSignatureAlgorithm, spki: bytes, signature: bytes, data: bytes | memoryview
) -> bool:
    key = decode_public_key(spki)
    if key.algorithm != alg.key_algorithm:
        # A 2001 key must not vouch for a 2012 signature and vice versa.
        raise SignatureError(f"{alg.name} signature with a key of algorithm {key.algorithm}")
    r, s = decode_signature(key.curve, signature)
    digest = hashing.digest(alg.hash_name, data)
    return gost_ec.verify_digest(key.curve, (key.x, key.y), digest_to_int(digest), r, s)


def _verify_pyca(
    spki: bytes,
    algorithm_oid: str,
    algorithm_params: bytes | None,
    signature: bytes,
    data: bytes | memoryview,
) -> bool:
    if not (
        algorithm_oid in _RSA_PKCS1
        or algorithm_oid in _ECDSA
        or algorithm_oid in (_RSA_PSS, _ED25519, _ED448)
    ):
        raise UnsupportedAlgorithmError(f"unsupported signature algorithm {algorithm_oid}")
    try:
        key = serialization.load_der_public_key(spki)
    except (ValueError, PycaUnsupported) as exc:
        raise SignatureError(f"cannot load the issuer's public key: {exc}") from None
    try:
        if algorithm_oid in _RSA_PKCS1:
            if not isinstance(key, rsa.RSAPublicKey):
                raise SignatureError("RSA signature with a non-RSA key")
            name = _RSA_PKCS1[algorithm_oid]
            key.verify(
                signature,
                _sha(name, data),
                padding.PKCS1v15(),
                utils.Prehashed(_PYCA_HASHES[name]()),
            )
        elif algorithm_oid == _RSA_PSS:
            if not isinstance(key, rsa.RSAPublicKey):
                raise SignatureError("RSA-PSS signature with a non-RSA key")
            name, pss = _pss_padding(algorithm_params)
            key.verify(signature, _sha(name, data), pss, utils.Prehashed(_PYCA_HASHES[name]()))
        elif algorithm_oid in _ECDSA:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise SignatureError("ECDSA signature with a non-EC key")
            name = _ECDSA[algorithm_oid]
            key.verify(signature, _sha(name, data), ec.ECDSA(utils.Prehashed(_PYCA_HASHES[name]())))
        elif algorithm_oid == _ED25519:
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise SignatureError("Ed25519 signature with another key type")
            key.verify(signature, bytes(data))
        else:
            if not isinstance(key, ed448.Ed448PublicKey):
                raise SignatureError("Ed448 signature with another key type")
            key.verify(signature, bytes(data))
    except InvalidSignature:
        return False
    return True


def _pss_padding(params_der: bytes | None) -> tuple[str, padding.PSS]:
    """Hash name and padding from RSASSA-PSS-params (RFC 4055 defaults: SHA-1, salt 20)."""
    if not params_der:
        raise SignatureError("RSASSA-PSS without parameters")
    try:
        params = algos.RSASSAPSSParams.load(params_der)
        hash_name = params["hash_algorithm"]["algorithm"].native
        mgf = params["mask_gen_algorithm"]
        if mgf["algorithm"].native != "mgf1":
            raise SignatureError("RSASSA-PSS with a mask generation function other than MGF1")
        mgf_hash = mgf["parameters"]["algorithm"].native
        salt = int(params["salt_length"].native)
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureError(f"malformed RSASSA-PSS parameters: {exc}") from None
    if hash_name not in _PYCA_HASHES or mgf_hash not in _PYCA_HASHES:
        raise UnsupportedAlgorithmError(f"RSASSA-PSS with {hash_name}/{mgf_hash}")
    return hash_name, padding.PSS(padding.MGF1(_PYCA_HASHES[mgf_hash]()), salt)
