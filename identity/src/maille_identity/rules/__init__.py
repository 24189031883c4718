"""Communication rules: who may write to whom, and the fast *visibles* service built on them."""
