"""The school directory: structures, classes and groups, persons and their links, filled from AAF feeds."""
