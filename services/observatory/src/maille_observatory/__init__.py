"""The observatory of uses: who uses what, where and when — counted from the pseudonymous uses every service tells,
folded into rollups and mergeable sketches, shown to a principal for their school, to a collectivité for its schools,
to the académie for all of them, and never a figure behind fewer than five persons."""

__version__ = "0.1.0"
