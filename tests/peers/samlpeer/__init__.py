"""What the SAML peers share: a pysaml2 identity provider over Maille's directory."""
