"""A mail's attachments: kept as every service keeps files (`maille_kit.files`: the type read from the content, the
virus scanner's hook, the bytes in the service's own database), in messaging's `attachments` collections."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from maille_kit.files import ClamdScanner, DocstoreFiles, FileStore, Refused, Scanner, sniff
from maille_messaging.repository import ATTACHMENTS, CHUNKS, MailRepository

AttachmentStore = FileStore
__all__ = ["AttachmentStore", "ClamdScanner", "DocstoreAttachments", "Refused", "Scanner", "new_attachment", "sniff"]


class DocstoreAttachments(DocstoreFiles):
    """Attachments in messaging's own database (`attachments`, `attachment_chunks`)."""

    def __init__(self, repository: MailRepository) -> None:
        super().__init__(repository.docstore, files=ATTACHMENTS, chunks=CHUNKS)


def new_attachment(*, tenant: str, owner: str, message: str, name: str, mime: str, size: int) -> dict[str, Any]:
    return {
        "_id": "a" + os.urandom(10).hex(),
        "tenant": tenant,
        "owner": owner,
        "message": message,
        "name": name,
        "type": mime,
        "size": size,
        "created": datetime.now(UTC),
    }
