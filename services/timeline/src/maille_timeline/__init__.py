"""The timeline: notifications made from the services' events, a feed per person with a live unread count, and the
e-mails that reach the people who rarely sign in (at once, or in a daily digest), each with a one-click unsubscribe."""

__version__ = "0.1.0"
