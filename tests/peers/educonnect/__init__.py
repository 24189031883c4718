"""EduConnect (pupils and parents) and the académie's agent IdP, as SAML peers (see samlpeer)."""
