"""The library's HTTP routes (api/cdi.py), and the service's parts they ask for (made at start:
maille_library.main.parts)."""

from __future__ import annotations

from typing import Annotated

from maille_kit.app import part
from maille_library.account import Accounts
from maille_library.connections import Connections
from maille_library.directory import Directory
from maille_library.notices import LoanNotices
from maille_library.search import Search
from maille_library.settings import LibrarySettings
from maille_library.sync import ReaderSync

Settings = Annotated[LibrarySettings, part(LibrarySettings)]
Loans = Annotated[Accounts, part(Accounts)]
Catalogues = Annotated[Search, part(Search)]
Schools = Annotated[Connections, part(Connections)]
Readers = Annotated[ReaderSync, part(ReaderSync)]
People = Annotated[Directory, part(Directory)]
Notices = Annotated[LoanNotices, part(LoanNotices)]
