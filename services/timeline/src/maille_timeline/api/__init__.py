"""The timeline's HTTP routes (api/feed.py), and the service's parts they ask for (made at start:
maille_timeline.main.parts)."""

from __future__ import annotations

from typing import Annotated

from maille_kit.app import part
from maille_timeline.mail import Mails
from maille_timeline.news import News
from maille_timeline.notifications import Notifications, Preferences

Feeds = Annotated[Notifications, part(Notifications)]
Choices = Annotated[Preferences, part(Preferences)]
Mailer = Annotated[Mails, part(Mails)]
Writing = Annotated[News, part(News)]
