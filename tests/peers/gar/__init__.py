"""The GAR as Maille's peer: a SAML service provider (pysaml2) that receives the ENT's assertions."""
