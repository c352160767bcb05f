"""An Outlook "rich text" ADD_CERT letter: the ZIP inside winmail.dat goes through every check."""

from __future__ import annotations

from testkit import letters
from testkit import pki as factory
from tests.app.world import SNILS, World


def test_zip_in_pr_attach_data_bin_is_registered(world: World) -> None:
    participant = factory.make_end_entity(world.ca, snils=SNILS)
    archive = letters.certificate_zip("Иванов.cer", participant.der)
    assert archive.endswith(b"\x00\x00")  # the ZIP comment length tnefparse used to strip
    blob = letters.build_tnef([("Иванов.zip", archive)], data_in="mapi")
    winmail = letters.part(blob, b'application/ms-tnef; name="winmail.dat"')
    body = letters.multipart("mixed", [letters.text_part("См. вложение"), winmail], "tn")
    result = world.process(letters.letter(body, message_id="<winmail-1@clinic.example>"), uid=1)
    assert result.outcome == "success", result.detail
    store_file = world.config.certificate_store / f"{participant.cert.thumbprint_sha1}.cer"
    assert store_file.read_bytes() == participant.der
