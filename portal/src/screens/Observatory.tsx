import { useEffect, useRef, useState } from "react";
import { fr } from "@codegouvfr/react-dsfr";
import { init, use, type EChartsType } from "echarts/core";
import { BarChart, LineChart } from "echarts/charts";
import { AriaComponent, GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import { get } from "../api";
import { navigate } from "../router";
import { Failure, Notice, Show, useLoad } from "./common";

use([BarChart, LineChart, GridComponent, TooltipComponent, LegendComponent, AriaComponent, CanvasRenderer]);

const API = "/api/observatory/v1";

interface Scope {
  id: string;
  label: string;
  kind: string;
}
interface Cell {
  key: string;
  label: string;
  value: number | null;
  secret: boolean;
  of?: number;
  rate?: number | null;
  first_answer?: string | null;
}
interface Point {
  month: string;
  persons: number | null;
  rate: number | null;
  secret: boolean;
}
interface Chart {
  title: string;
  unit: string;
  cells?: Cell[];
  series?: { profile: string; label: string; points: Point[] }[];
}
interface Board {
  scope: { id: string; label: string };
  school_year: string;
  month: string;
  months: string[];
  population: { key: string; label: string; value: number }[];
  merged_at: number | null;
  charts: Record<string, Chart>;
}

const KINDS: Record<string, string> = {
  academie: "Académie",
  type: "Type d'établissement",
  district: "Bassin",
  collectivite: "Collectivité",
  school: "Établissement",
};
// The charts, in the order a principal reads them.
const ORDER = ["active", "hours", "services", "parents", "schools", "signins", "vendors", "support"];
const COLOURS = ["#000091", "#c9191e", "#18753c", "#b34000", "#695240", "#0063cb", "#a558a0", "#3a3a3a"];

function currentYear(): string {
  const now = new Date();
  const start = now.getMonth() >= 8 ? now.getFullYear() : now.getFullYear() - 1;
  return `${start}-${start + 1}`;
}

function previousYear(year: string): string {
  const start = Number(year.slice(0, 4)) - 1;
  return `${start}-${start + 1}`;
}

// Observatoire: /observatoire?perimetre=<scope>&annee=<school year>
export function Observatory({ path }: { path: string }) {
  const query = new URLSearchParams(path.split("?")[1] ?? "");
  const [scopes] = useLoad(() => get<Scope[]>(`${API}/scopes`), []);
  return (
    <Show loaded={scopes}>
      {(found) => {
        if (found.length === 0)
          return (
            <>
              <h1>Observatoire des usages</h1>
              <Notice message="Aucun tableau de bord ne vous est ouvert. Les chefs d'établissement voient le leur ; les collectivités et l'académie, ceux que les exploitants leur ont ouverts." />
            </>
          );
        const scope = found.find((s) => s.id === query.get("perimetre")) ?? found[0];
        const year = query.get("annee") ?? currentYear();
        return <Dashboard scopes={found} scope={scope} year={year} />;
      }}
    </Show>
  );
}

function Dashboard({ scopes, scope, year }: { scopes: Scope[]; scope: Scope; year: string }) {
  const [board] = useLoad(() => get<Board>(`${API}/dashboards/${encodeURIComponent(scope.id)}?year=${year}`), [scope.id, year]);
  const go = (perimetre: string, annee: string) =>
    navigate(`/observatoire?${new URLSearchParams({ perimetre, annee })}`);
  return (
    <>
      <h1>Observatoire des usages</h1>
      <p className="maille-no-print">
        Qui utilise quoi, où et quand — compté sans jamais nommer personne. Aucun chiffre ne porte sur moins de
        cinq personnes : ceux-là sont masqués (« moins de 5 »).
      </p>
      <div className={`${fr.cx("fr-grid-row", "fr-grid-row--gutters")} maille-no-print`}>
        <div className={fr.cx("fr-col-12", "fr-col-md-6", "fr-select-group")}>
          <label className={fr.cx("fr-label")} htmlFor="perimetre">Périmètre</label>
          <select id="perimetre" className={fr.cx("fr-select")} value={scope.id} onChange={(e) => go(e.target.value, year)}>
            {scopes.map((s) => (
              <option key={s.id} value={s.id}>
                {KINDS[s.kind] ?? s.kind} — {s.label}
              </option>
            ))}
          </select>
        </div>
        <div className={fr.cx("fr-col-12", "fr-col-md-3", "fr-select-group")}>
          <label className={fr.cx("fr-label")} htmlFor="annee">Année scolaire</label>
          <select id="annee" className={fr.cx("fr-select")} value={year} onChange={(e) => go(scope.id, e.target.value)}>
            {[currentYear(), previousYear(currentYear())].map((y) => (
              <option key={y} value={y}>{y.replace("-", "–")}</option>
            ))}
          </select>
        </div>
        <div className={fr.cx("fr-col-12", "fr-col-md-3")}>
          <button type="button" className={fr.cx("fr-btn", "fr-btn--secondary", "fr-icon-printer-line", "fr-btn--icon-left", "fr-mt-4w")} onClick={() => window.print()}>
            Imprimer
          </button>
        </div>
      </div>
      <Show loaded={board}>{(b) => <Charts board={b} />}</Show>
    </>
  );
}

function Charts({ board }: { board: Board }) {
  const csv = (chart: string) =>
    `${API}/dashboards/${encodeURIComponent(board.scope.id)}/${chart}.csv?year=${board.school_year}`;
  const people = board.population.map((p) => `${p.value} ${p.label.toLowerCase()}`).join(", ");
  return (
    <>
      <h2 className={fr.cx("fr-h3", "fr-mt-4w")}>
        {board.scope.label} — année {board.school_year.replace("-", "–")}
      </h2>
      <p className={fr.cx("fr-text--sm")}>
        {people ? `Dans l'annuaire : ${people}. ` : ""}
        {board.merged_at ? `Chiffres arrêtés à ${new Date(board.merged_at * 1000).toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" })}.` : ""}
      </p>
      {ORDER.filter((name) => board.charts[name]).map((name) => (
        <section key={name} className={`${fr.cx("fr-mt-4w")} maille-chart`} aria-labelledby={`graphique-${name}`}>
          <h3 id={`graphique-${name}`} className={fr.cx("fr-h5")}>{board.charts[name].title}</h3>
          <Plot name={name} chart={board.charts[name]} months={board.months} />
          <DataTable name={name} chart={board.charts[name]} />
          <p className="maille-no-print">
            <a className={fr.cx("fr-link", "fr-icon-download-line", "fr-link--icon-left")} href={csv(name)} download>
              Télécharger les données (CSV)<span className="fr-sr-only"> — {board.charts[name].title}</span>
            </a>
          </p>
        </section>
      ))}
      {board.scope.id.startsWith("school:") ? null : (
        <section className={`${fr.cx("fr-mt-6w")} maille-no-print`}>
          <h3 className={fr.cx("fr-h5")}>Export pour la recherche</h3>
          <p>
            Les agrégats anonymes de l'année, par établissement et par mois, au format Parquet (dictionnaire des
            données : docs/observatory.md).
          </p>
          <ul>
            {["usages", "actifs"].map((table) => (
              <li key={table}>
                <a className={fr.cx("fr-link")} download href={`${API}/exports/${encodeURIComponent(board.scope.id)}/${board.school_year}/${table}.parquet`}>
                  {table === "usages" ? "Usages par dimension" : "Personnes actives par profil"} (Parquet)
                </a>
              </li>
            ))}
          </ul>
        </section>
      )}
    </>
  );
}

function describe(chart: Chart): string {
  if (chart.series) return `${chart.title} : ${chart.series.length} séries, données détaillées dans le tableau qui suit.`;
  const shown = (chart.cells ?? []).filter((c) => !c.secret && c.value);
  const top = [...shown].sort((a, b) => (b.value ?? 0) - (a.value ?? 0))[0];
  return `${chart.title}${top ? ` : le plus élevé, ${top.label} (${top.value} ${chart.unit})` : " : aucune donnée"}. Données détaillées dans le tableau qui suit.`;
}

function Plot({ name, chart, months }: { name: string; chart: Chart; months: string[] }) {
  const box = useRef<HTMLDivElement>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    if (!box.current) return;
    let plot: EChartsType;
    try {
      plot = init(box.current, undefined, { renderer: "canvas" });
    } catch {
      setFailed(true);
      return;
    }
    const common = {
      color: COLOURS,
      animation: false,
      aria: { enabled: true, label: { description: describe(chart) } },
      tooltip: { trigger: "axis" as const },
      grid: { left: 48, right: 16, top: 40, bottom: 48, containLabel: true },
    };
    if (chart.series) {
      plot.setOption({
        ...common,
        legend: { type: "scroll" as const, top: 0 },
        xAxis: { type: "category" as const, data: months },
        yAxis: { type: "value" as const, name: "% actifs", max: 100 },
        series: chart.series.map((s) => ({
          name: s.label,
          type: "line" as const,
          connectNulls: false,
          lineStyle: s.label.endsWith("l'an dernier") ? { type: "dashed" as const } : undefined,
          data: s.points.map((p) => p.rate),
        })),
      });
    } else {
      const cells = chart.cells ?? [];
      plot.setOption({
        ...common,
        xAxis: { type: "category" as const, data: cells.map((c) => c.label), axisLabel: { interval: name === "hours" ? 1 : 0, rotate: cells.length > 8 && name !== "hours" ? 30 : 0 } },
        yAxis: { type: "value" as const, name: chart.unit },
        series: [{ type: "bar" as const, name: chart.unit, data: cells.map((c) => c.value) }],
      });
    }
    const resize = () => plot.resize();
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      plot.dispose();
    };
  }, [name, chart, months]);
  if (failed) return <Failure message="Le graphique ne peut pas s'afficher ici : ses données sont dans le tableau." />;
  return <div ref={box} className="maille-plot" role="img" aria-label={describe(chart)} data-testid={`graphique-${name}`} />;
}

function shown(value: number | null, secret: boolean): string {
  if (secret) return "moins de 5";
  return value === null ? "—" : value.toLocaleString("fr-FR");
}

function DataTable({ name, chart }: { name: string; chart: Chart }) {
  if (chart.series) {
    return (
      <details className="maille-data">
        <summary>Voir les données</summary>
        <div className={fr.cx("fr-table")}>
          <table data-testid={`donnees-${name}`}>
            <caption className="fr-sr-only">{chart.title}</caption>
            <thead>
              <tr><th scope="col">Série</th><th scope="col">Mois</th><th scope="col">Personnes actives</th><th scope="col">Taux</th></tr>
            </thead>
            <tbody>
              {chart.series.flatMap((s) =>
                s.points.filter((p) => p.persons !== null || p.secret).map((p) => (
                  <tr key={`${s.label}-${p.month}`}>
                    <td>{s.label}</td><td>{p.month}</td><td>{shown(p.persons, p.secret)}</td>
                    <td>{p.rate === null ? "—" : `${p.rate.toLocaleString("fr-FR")} %`}</td>
                  </tr>
                )),
              )}
            </tbody>
          </table>
        </div>
      </details>
    );
  }
  const cells = chart.cells ?? [];
  const withOf = cells.some((c) => c.of !== undefined);
  const withWait = cells.some((c) => c.first_answer !== undefined);
  return (
    <details className="maille-data" open={name === "parents" || name === "schools"}>
      <summary>Voir les données</summary>
      <div className={fr.cx("fr-table")}>
        <table data-testid={`donnees-${name}`}>
          <caption className="fr-sr-only">{chart.title}</caption>
          <thead>
            <tr>
              <th scope="col">{name === "hours" ? "Heure" : "Libellé"}</th>
              <th scope="col">{chart.unit[0].toUpperCase() + chart.unit.slice(1)}</th>
              {withOf ? <th scope="col">Sur</th> : null}
              {withOf && name === "parents" ? <th scope="col">Part</th> : null}
              {withWait ? <th scope="col">Première réponse (médiane)</th> : null}
            </tr>
          </thead>
          <tbody>
            {cells.map((c) => (
              <tr key={c.key}>
                <td>{c.label}</td>
                <td>{shown(c.value, c.secret)}</td>
                {withOf ? <td>{c.of ?? "—"}</td> : null}
                {withOf && name === "parents" ? <td>{c.rate === null || c.rate === undefined ? "—" : `${c.rate.toLocaleString("fr-FR")} %`}</td> : null}
                {withWait ? <td>{c.first_answer ?? "—"}</td> : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}
