# One image recipe for every deployable. Build from the repository root (the uv workspace):
#   docker build --build-arg DEPLOYABLE=catalog -t maille/catalog:0.1.0 .
# DEPLOYABLE: gateway, identity, catalog, messaging, library, timeline, support or observatory — or `demo`, compose's image of the national systems'
# peers and the demo seeding (PACKAGES="maille-peers maille-devstack maille-identity", APT_PACKAGES=xmlsec1).
# The portal (served by the gateway at /): its npm packages as its lock file says, built by Vite.
FROM node:20-bookworm-slim AS portal
WORKDIR /portal
COPY portal/package.json portal/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY portal/ ./
RUN npm run build

FROM python:3.11-slim-bookworm AS build
ARG DEPLOYABLE
ARG PACKAGES=""
RUN test -n "$DEPLOYABLE" || (echo "--build-arg DEPLOYABLE=<gateway|identity|catalog|messaging|library|timeline|support|observatory> is required" >&2; exit 1)
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY . /src
RUN cd /src && UV_PROJECT_ENVIRONMENT=/app/.venv UV_PYTHON_DOWNLOADS=never \
    uv sync --locked --no-dev --no-editable $(for p in ${PACKAGES:-maille-$DEPLOYABLE}; do printf -- '--package %s ' "$p"; done)

FROM python:3.11-slim-bookworm
ARG DEPLOYABLE
ARG BUILD=dev
ARG APT_PACKAGES=""
RUN if [ -n "$APT_PACKAGES" ]; then apt-get update && apt-get install -y --no-install-recommends $APT_PACKAGES \
    && rm -rf /var/lib/apt/lists/*; fi
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin maille
COPY --from=build /app/.venv /app/.venv
# Every image carries the built portal (a few hundred kB); only the gateway serves it (MAILLE_GATEWAY_PORTAL_DIR).
COPY --from=portal /portal/dist /app/portal
# maille_kit.container listens on 0.0.0.0:8080 unless MAILLE_<DEPLOYABLE>_HTTP_HOST / _PORT say otherwise.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MAILLE_DEPLOYABLE=$DEPLOYABLE \
    MAILLE_BUILD=$BUILD
USER 10001:10001
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz').status != 200)"]
CMD ["python", "-m", "maille_kit.container"]
