"""Secrets sealed at rest: opened only where they were sealed, under a key the service still has."""

import pytest

from maille_kit.secretbox import SecretBox, UnreadableSecret


def test_a_secret_is_sealed_and_opened_where_it_belongs() -> None:
    box = SecretBox("first-key-of-16+chars")
    sealed = box.seal("pmb-password", context="connections:0350001L:password")
    assert "pmb-password" not in sealed and sealed.startswith("enc1:") and box.is_current(sealed)
    assert box.open(sealed, context="connections:0350001L:password") == "pmb-password"
    with pytest.raises(UnreadableSecret):  # copied onto another school, or into another field: it does not open
        box.open(sealed, context="connections:0350002M:password")
    assert box.seal("", context="x") == "" and box.open("kept in clear before", context="x") == "kept in clear before"


def test_a_rotation_reads_the_old_key_and_seals_under_the_new() -> None:
    old = SecretBox("first-key-of-16+chars")
    sealed = old.seal("secret", context="c")
    rotating = SecretBox.of("second-key-of-16+chars", "first-key-of-16+chars")
    assert rotating.open(sealed, context="c") == "secret" and not rotating.is_current(sealed)
    assert rotating.is_current(rotating.seal("secret", context="c"))
    with pytest.raises(UnreadableSecret, match="neither the current key nor an old one"):
        SecretBox("second-key-of-16+chars").open(sealed, context="c")
    with pytest.raises(ValueError):
        SecretBox("short")
