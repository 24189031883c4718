"""The resource catalog: vendors' resources, schools' subscriptions (GAR abonnements), licence assignments and each
person's médiacentre."""

__version__ = "0.1.0"
