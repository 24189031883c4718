"""Enough of a browser for end-to-end tests of sign-in: redirects followed by hand, each site's cookies
kept (Secure ones included, as browsers do on http://localhost), Keycloak's login form filled in."""

from __future__ import annotations

import html
import re
from http.cookies import SimpleCookie
from urllib.parse import urljoin, urlsplit

import httpx


class Browser:
    """Enough of a browser: follows redirects by hand, keeps each site's cookies (Secure ones included,
    as browsers do on http://localhost), fills in Keycloak's login form."""

    def __init__(self) -> None:
        self.client = httpx.Client(timeout=30)
        self.cookies: dict[str, dict[tuple[str, str], str]] = {}  # host:port -> (path, name) -> value
        self.set_cookie: dict[str, str] = {}  # cookie name -> the last Set-Cookie header that set it

    def _jar(self, url: str) -> dict[tuple[str, str], str]:
        return self.cookies.setdefault(urlsplit(str(url)).netloc, {})

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        jar = self._jar(url)
        path = urlsplit(str(httpx.URL(url, params=kwargs.get("params")))).path or "/"
        headers = dict(kwargs.pop("headers", {}) or {})
        # A cookie goes where its path says (two Keycloak realms on one host each have their own session).
        sent = sorted(
            ((p, n, v) for (p, n), v in jar.items() if path.startswith(p.rstrip("/") + "/") or path == p),
            key=lambda c: -len(c[0]),
        )
        if sent:
            headers["cookie"] = "; ".join(f"{n}={v}" for _, n, v in sent)
        response = self.client.request(method, url, headers=headers, **kwargs)
        for header in response.headers.get_list("set-cookie"):
            for name, morsel in SimpleCookie(header).items():
                self.set_cookie[name] = header
                key = (morsel["path"] or "/", name)
                if morsel["max-age"] == "0" or morsel.value == "" or "1970" in morsel["expires"]:
                    jar.pop(key, None)
                else:
                    jar[key] = morsel.value
        return response

    def go(self, url: str, *, method: str = "GET", **kwargs) -> httpx.Response:
        """Request, then follow redirects as a browser does (a POST's redirect becomes a GET)."""
        response = self.request(method, url, **kwargs)
        while response.status_code in (301, 302, 303, 307):
            url = urljoin(url, response.headers["location"])
            response = self.request("GET", url)
        return response

    def sign_in(self, login_page: httpx.Response, username: str, password: str) -> httpx.Response:
        form = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', login_page.text)
        assert form, login_page.text[:500]
        action = html.unescape(form.group(1))
        return self.go(action, method="POST", data={"username": username, "password": password, "credentialId": ""})

    def post_form(self, page: httpx.Response, **fields: str) -> httpx.Response:
        """Submit the page's first form (hidden fields kept, `fields` added) — what a browser does with the
        self-posting forms of SAML's HTTP-POST binding, or with a form a person fills in."""
        form = re.search(r'(?s)<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page.text)
        assert form, page.text[:500]
        data = {
            html.unescape(m.group(1)): html.unescape(m.group(2))
            for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2))
        }
        return self.go(urljoin(str(page.url), html.unescape(form.group(1))), method="POST", data={**data, **fields})

    def sign_in_upstream(self, page: httpx.Response, username: str, password: str) -> httpx.Response:
        """At an upstream IdP (a SAML peer): let the AuthnRequest post itself, fill in the peer's login form,
        let the response post itself back to Keycloak; where the browser lands."""
        page = self.through_saml(page)
        return self.through_saml(self.post_form(page, username=username, password=password))

    def through_saml(self, page: httpx.Response) -> httpx.Response:
        """Let the self-posting forms of SAML's HTTP-POST binding (requests and responses, sign-in and
        sign-out) post themselves, as a browser with scripts does; where the browser ends up."""
        for _ in range(10):
            if 'name="SAMLRequest"' not in page.text and 'name="SAMLResponse"' not in page.text:
                break
            page = self.post_form(page)
        return page

    def site_cookies(self, url: str) -> dict[str, str]:
        """The cookies the browser holds for a site (host and port), by name."""
        return {name: value for (_, name), value in self._jar(url).items()}
