"""Maille's Grafana dashboards, written as code: `python tools/charts/dashboards.py` writes them into
charts/maille/files/dashboards/ (the umbrella chart makes a ConfigMap of each for Grafana's sidecar);
`make charts` checks they are current and that every query parses (promtool).

Three dashboards: the platform at a glance, the sign-in funnel, and one service (chosen in a list).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "charts" / "maille" / "files" / "dashboards"
NOT_PROBES = 'http_route!~"/readyz|/healthz"'
REQUESTS = "http_server_request_duration_seconds_count"


def panel(title: str, queries: dict[str, str], *, unit: str = "short", description: str = "") -> dict[str, Any]:
    """A time series panel: each query by its legend."""
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend}
            for n, (legend, expr) in enumerate(queries.items())
        ],
    }


def dashboard(uid: str, title: str, panels: list[dict[str, Any]], variables: list[dict[str, Any]] = ()) -> dict:
    """A dashboard of `panels`, two to a row."""
    laid = [
        {**p, "id": n + 1, "gridPos": {"h": 8, "w": 12, "x": 12 * (n % 2), "y": 8 * (n // 2)}}
        for n, p in enumerate(panels)
    ]
    source = {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Source"}
    return {
        "uid": uid,
        "title": title,
        "tags": ["maille"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [source, *variables]},
        "panels": laid,
    }


def overview() -> dict:
    return dashboard(
        "maille-overview",
        "Maille — la plateforme",
        [
            panel(
                "Requêtes par seconde, par service",
                {"{{job}}": f"sum by (job) (rate(http_server_request_duration_seconds_count{{{NOT_PROBES}}}[5m]))"},
                unit="reqps",
            ),
            panel(
                "Part des réponses en erreur (5xx)",
                {
                    "{{job}}": "sum by (job) (rate(http_server_request_duration_seconds_count"
                    '{http_response_status_code=~"5.."}[5m])) / sum by (job) '
                    "(rate(http_server_request_duration_seconds_count[5m]))"
                },
                unit="percentunit",
            ),
            panel(
                "Durée p99 par service",
                {
                    "{{job}}": "histogram_quantile(0.99, sum by (job, le) "
                    f"(rate(http_server_request_duration_seconds_bucket{{{NOT_PROBES}}}[5m])))"
                },
                unit="s",
            ),
            panel(
                "Connexions par minute",
                {"{{outcome}}": "sum by (outcome) (rate(maille_gateway_signins_total[5m])) * 60"},
            ),
            panel(
                "Sessions ouvertes (estimation sur 8 h)",
                {
                    "sessions": "sum(increase(maille_gateway_sessions_started_total[8h]))"
                    " - sum(increase(maille_gateway_sessions_ended_total[8h]) or vector(0))"
                },
            ),
            panel(
                "Événements en attente",
                {
                    "outbox {{source}}": "max by (source) (maille_outbox_backlog)",
                    "consommateur {{consumer}}": "max by (consumer) (maille_consumer_pending)",
                },
            ),
            panel("Lettres mortes", {"{{service}}": "max by (service) (maille_deadletters)"}),
            panel(
                "Docstore : durée p99 des appels",
                {
                    "{{job}}": "histogram_quantile(0.99, sum by (job, le) "
                    "(rate(maille_docstore_duration_seconds_bucket[5m])))"
                },
                unit="s",
            ),
            panel(
                "Import AAF : fiches lues par seconde",
                {"{{tenant}}": "sum by (tenant) (rate(maille_aaf_records_total[1m]))"},
            ),
            panel(
                "Certificat client du GAR : jours restants",
                {"jours": 'min(maille_certificate_expiry_seconds{certificate="gar-client"} - time()) / 86400'},
            ),
        ],
    )


def signin() -> dict:
    return dashboard(
        "maille-signin",
        "Maille — les connexions",
        [
            panel(
                "Connexions par fournisseur d'identité (par minute)",
                {"{{idp}}": "sum by (idp) (rate(maille_gateway_signins_total[5m])) * 60"},
            ),
            panel(
                "Issue des connexions (par minute)",
                {"{{outcome}}": "sum by (outcome) (rate(maille_gateway_signins_total[5m])) * 60"},
                description="linked : compte rattaché ; choose : plusieurs personnes ; refused : refus de l'annuaire ; "
                "unavailable : l'annuaire n'a pas répondu ; failed : réponse de Keycloak refusée",
            ),
            panel(
                "Part des connexions en échec, par fournisseur",
                {
                    "{{idp}}": 'sum by (idp) (rate(maille_gateway_signins_total{outcome=~"failed|unavailable"}[5m]))'
                    " / sum by (idp) (rate(maille_gateway_signins_total[5m]))"
                },
                unit="percentunit",
            ),
            panel(
                "Durée du retour de connexion (p50, p99)",
                {
                    legend: f"histogram_quantile({q}, sum by (le) (rate(http_server_request_duration_seconds_bucket"
                    '{http_route="/auth/callback"}[5m])))'
                    for legend, q in (("p50", "0.5"), ("p99", "0.99"))
                },
                unit="s",
            ),
            panel(
                "Sessions ouvertes et fermées (par minute)",
                {
                    "ouvertes": "sum(rate(maille_gateway_sessions_started_total[5m])) * 60",
                    "fermées ({{how}})": "sum by (how) (rate(maille_gateway_sessions_ended_total[5m])) * 60",
                },
            ),
            panel(
                "Annuaire (identity) : durée p99 de /signin",
                {
                    "p99": "histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket"
                    '{http_route="/api/identity/v1/signin"}[5m])))'
                },
                unit="s",
            ),
        ],
    )


def service() -> dict:
    job = {
        "name": "job",
        "label": "Service",
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": "label_values(http_server_request_duration_seconds_count, job)",
        "refresh": 2,
    }
    mine = f'job="$job", {NOT_PROBES}'
    return dashboard(
        "maille-service",
        "Maille — un service",
        [
            panel(
                "Requêtes par seconde, par route",
                {"{{http_route}}": f"sum by (http_route) (rate({REQUESTS}{{{mine}}}[5m]))"},
                unit="reqps",
            ),
            panel(
                "Erreurs par route (par seconde)",
                {
                    "{{http_route}} {{http_response_status_code}}": "sum by (http_route, http_response_status_code) "
                    f'(rate({REQUESTS}{{{mine}, http_response_status_code=~"5..|429"}}[5m]))'
                },
                unit="reqps",
            ),
            panel(
                "Durée p99 par route",
                {
                    "{{http_route}}": "histogram_quantile(0.99, sum by (http_route, le) "
                    f"(rate(http_server_request_duration_seconds_bucket{{{mine}}}[5m])))"
                },
                unit="s",
            ),
            panel(
                "Docstore : appels par commande (p99)",
                {
                    "{{command}}": "histogram_quantile(0.99, sum by (command, le) "
                    '(rate(maille_docstore_duration_seconds_bucket{job="$job"}[5m])))'
                },
                unit="s",
            ),
            panel(
                "Outbox : en attente et retard",
                {
                    "en attente": 'sum(maille_outbox_backlog{job="$job"})',
                    "retard (s)": 'max(maille_outbox_lag_seconds{job="$job"})',
                },
            ),
            panel(
                "Consommateurs",
                {
                    "{{consumer}} à livrer": 'max by (consumer) (maille_consumer_pending{job="$job"})',
                    "{{consumer}} livrés plusieurs fois": 'max by (consumer) (maille_consumer_redelivered{job="$job"})',
                    "{{consumer}} mis de côté": "sum by (consumer) "
                    '(increase(maille_consumer_dead_lettered_total{job="$job"}[1h]))',
                },
            ),
            panel("Processeur (cœurs)", {"{{instance}}": 'rate(process_cpu_seconds_total{job="$job"}[5m])'}),
            panel("Mémoire", {"{{instance}}": 'process_resident_memory_bytes{job="$job"}'}, unit="bytes"),
        ],
        [job],
    )


DASHBOARDS = {"overview": overview, "signin": signin, "service": service}


def rendered() -> dict[str, str]:
    """Each dashboard's file name and JSON."""
    return {
        f"{name}.json": json.dumps(make(), indent=1, ensure_ascii=False) + "\n" for name, make in DASHBOARDS.items()
    }


def queries() -> list[str]:
    """Every query of every dashboard, its variables given a value (for promtool to parse)."""
    return [
        target["expr"].replace("$job", "gateway")
        for make in DASHBOARDS.values()
        for p in make()["panels"]
        for target in p["targets"]
    ]


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (OUT / name).write_text(text)
    print(f"wrote {len(DASHBOARDS)} dashboards into {OUT}", file=sys.stderr)
