"""The certificate checks that ask the list of accredited CAs (pure: no database, no clock).

* :func:`listed_issuer`: for a certificate whose CA key is not registered, the
  certificate of the listed key that issued it, its signature verified (the
  policy ``[trust_list] auto_register_unknown``). The list is never trusted
  without that verification.
* :func:`accreditation_problem`: whether the CA was accredited when the
  certificate was issued (its notBefore), beyond the regulation's letter.
* :func:`describe_listing`, :func:`accreditation_note`: English lines for the journal.
"""

from __future__ import annotations

from datetime import datetime

from mailbot.pki.certificate import Certificate
from mailbot.pki.errors import PkiError
from mailbot.pki.issuer import CaDirectory, ca_usable_problem, signed_by
from mailbot.trustlist.register import AccreditationRegister, ListedKey


def issuing_key(cert: Certificate, ca: Certificate | None) -> bytes | None:
    """The identifier of the key that signed *cert*: the CA's SKI once found, else the AKI."""
    if ca is not None and ca.subject_key_identifier is not None:
        return ca.subject_key_identifier
    return cert.authority_key_identifier


def listing_of(
    cert: Certificate, ca: Certificate | None, register: AccreditationRegister | None
) -> ListedKey | None:
    """What the list says about the key that signed *cert* (None: not listed, or no list)."""
    key = issuing_key(cert, ca)
    if register is None or key is None:
        return None
    return register.key(key)


def listed_issuer(
    cert: Certificate, listed: ListedKey, directory: CaDirectory, at: datetime
) -> tuple[Certificate | None, str]:
    """The listed certificate of *listed*'s key that issued *cert*, and why (or why none).

    It must carry the certificate's issuer name, verify the signature and be a
    usable CA at *at*; a key an administrator deactivated is refused whatever the
    list says.
    """
    key = bytes.fromhex(listed.key_identifier_hex)
    if directory.retired(key):
        return None, f"key {listed.key_identifier_hex} was deactivated by an administrator"
    issuer_name = cert.issuer.normalized_key()
    problems: list[str] = []
    for der in listed.certificates_der:
        try:
            ca = Certificate.from_der(der)
        except PkiError:
            continue  # checked on import; a row damaged since then is just not used
        if ca.subject.normalized_key() != issuer_name:
            problems.append(f"listed CA {ca.thumbprint_sha1} has another subject name")
        elif not signed_by(cert, ca):
            problems.append(f"signature does not verify with listed CA {ca.thumbprint_sha1}")
        elif (problem := ca_usable_problem(ca, at)) is not None:
            problems.append(f"listed CA {ca.thumbprint_sha1}: {problem}")
        else:
            return ca, f"signature verified with listed CA {ca.thumbprint_sha1}"
    return None, "; ".join(problems) or "the list holds no certificate of the key"


def accreditation_problem(cert: Certificate, listed: ListedKey | None) -> str | None:
    """Why the CA was not accredited on the certificate's notBefore (None: it was, or unknown).

    Only a status period that covers the date and says anything but «Действует»
    counts against the certificate: a list that says nothing about the date
    (history too short, a status this code does not know) holds nothing against it.
    """
    if listed is None or listed.accredited_on(cert.not_before) is not False:
        return None
    return (
        f"{listed.authority_name} (registry no. {listed.registry_number or '-'}) "
        f"was not accredited on {cert.not_before.isoformat()}, the certificate's notBefore"
    )


def accreditation_note(cert: Certificate, listed: ListedKey) -> str:
    """Why step 7a let *cert* pass, for the journal (English, one line)."""
    said = listed.accredited_on(cert.not_before)
    how = "accredited on notBefore" if said else "the list says nothing about notBefore"
    return f"{how} ({cert.not_before.isoformat()}); {describe_listing(listed)}"


def describe_listing(listed: ListedKey) -> str:
    """The list's facts about one key, for the journal (English, one line)."""
    state = "listed" if listed.present else f"gone from the list since v{listed.listed_in.version}"
    return (
        f"key {listed.key_identifier_hex} {state} (list v{listed.current.version}): "
        f"{listed.authority_name}, registry no. {listed.registry_number or '-'}, "
        f"status {listed.status.text} since {listed.status.valid_from.date().isoformat()}"
    )
