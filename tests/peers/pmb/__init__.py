"""A PMB stand-in: PMB's external services (`ws/connector_out.php`, JSON-RPC 1.0) as pmb.md describes them."""
