"""A certificate's fields as people read them (``mailbot cert inspect``, the console's CA page)."""

from __future__ import annotations

from typing import Any

from mailbot.pki.certificate import Certificate


def certificate_fields(cert: Certificate) -> dict[str, Any]:
    """The fields shown by ``cert inspect``."""
    return {
        "serial": cert.serial_hex,
        "subject": cert.subject.rfc4514(),
        "subject_cn": cert.subject_cn,
        "issuer": cert.issuer.rfc4514(),
        "snils": cert.snils,
        "inn": cert.inn,
        "innle": cert.innle,
        "ogrn": cert.ogrn,
        "ogrnip": cert.ogrnip,
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
        "signature_algorithm": cert.signature_algorithm.oid,
        "signature_algorithm_name": cert.signature_algorithm.name,
        "key_algorithm": cert.key_algorithm,
        "key_paramset": cert.key_paramset,
        "key_paramset_name": cert.key_paramset_name,
        "public_key": cert.public_key_check.describe(),
        "subject_key_identifier": (cert.subject_key_identifier or b"").hex().upper() or None,
        "authority_key_identifier": (cert.authority_key_identifier or b"").hex().upper() or None,
        "crl_urls": list(cert.crl_urls),
        "ca_issuer_urls": list(cert.ca_issuer_urls),
        "ocsp_urls": list(cert.ocsp_urls),
        "is_ca": cert.is_ca,
        "key_usage": sorted(cert.key_usage) if cert.key_usage is not None else None,
        "extended_key_usage": list(cert.extended_key_usage or []),
        "thumbprint_sha1": cert.thumbprint_sha1,
        "fingerprint_sha256": cert.fingerprint_sha256,
        "unknown_critical_extensions": list(cert.unknown_critical_extensions),
    }
