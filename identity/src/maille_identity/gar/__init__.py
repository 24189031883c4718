"""The GAR (the ministry's resource-access manager): the nightly directory export."""
