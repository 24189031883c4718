import { useState } from "react";
import { fr } from "@codegouvfr/react-dsfr";
import { call, explain, get } from "../api";
import type { Resource } from "../types";
import { opening } from "../words";
import { Failure, Show, useLoad } from "./common";

interface Shelf {
  ressources: Resource[];
  total: number;
  gar: "ok" | "incomplet" | "non configure";
}

const names = (list?: { nom: string }[]) => (list ?? []).map((c) => c.nom);
const PAGE = 24; // cards shown at first, and added by "Afficher plus" (a phone paints a few dozen quickly)

// The resources of one's schools (the GAR's and the vendors' own), as tiles: search, filters, favourites.
export function Mediacentre() {
  const [q, setQ] = useState("");
  const [filters, setFilters] = useState({ q: "", domaine: "", niveau: "", type: "", favoris: false });
  const query = new URLSearchParams({ limit: "200" });
  for (const key of ["q", "domaine", "niveau", "type"] as const) if (filters[key]) query.set(key, filters[key]);
  if (filters.favoris) query.set("favoris", "true");
  const [shelf, reload] = useLoad(() => get<Shelf>(`/api/catalog/v1/mediacentre?${query}`), [query.toString()]);
  const [all] = useLoad(() => get<Shelf>("/api/catalog/v1/mediacentre?limit=500"), []);
  const [error, setError] = useState<string | null>(null);
  const [shown, setShown] = useState(PAGE);
  const choices = (pick: (r: Resource) => string[]) =>
    all.state === "ok" ? [...new Set(all.value.ressources.flatMap(pick))].sort((a, b) => a.localeCompare(b, "fr")) : [];
  async function favourite(r: Resource) {
    try {
      await call(r.favori ? "DELETE" : "PUT", `/api/catalog/v1/mediacentre/favoris/${r.idRessource}`);
      reload();
    } catch (e) {
      setError(explain(e));
    }
  }
  const select = (id: string, label: string, key: "domaine" | "niveau" | "type", options: string[]) => (
    <div className={fr.cx("fr-select-group", "fr-col-12", "fr-col-md-3")}>
      <label className={fr.cx("fr-label")} htmlFor={id}>{label}</label>
      <select className={fr.cx("fr-select")} id={id} value={filters[key]} onChange={(e) => setFilters({ ...filters, [key]: e.target.value })}>
        <option value="">Tous</option>
        {options.map((o) => (
          <option key={o} value={o}>{o}</option>
        ))}
      </select>
    </div>
  );
  return (
    <>
      <h1>Médiacentre</h1>
      {error && <Failure message={error} />}
      <form
        role="search"
        className={fr.cx("fr-grid-row", "fr-grid-row--gutters", "fr-mb-2w")}
        onSubmit={(e) => {
          e.preventDefault();
          setShown(PAGE);
          setFilters({ ...filters, q });
        }}
      >
        <div className={fr.cx("fr-col-12", "fr-col-md-3")}>
          <label className={fr.cx("fr-label")} htmlFor="recherche-ressources">Rechercher une ressource</label>
          <div className={fr.cx("fr-search-bar")}>
            <input className={fr.cx("fr-input")} id="recherche-ressources" type="search" value={q} onChange={(e) => setQ(e.target.value)} />
            <button className={fr.cx("fr-btn")} type="submit" title="Rechercher">Rechercher</button>
          </div>
        </div>
        {select("filtre-discipline", "Discipline", "domaine", choices((r) => names(r.domaineEnseignement)))}
        {select("filtre-niveau", "Niveau", "niveau", choices((r) => names(r.niveauEducatif)))}
        {select("filtre-type", "Type", "type", choices((r) => (r.typePresentation ? [r.typePresentation.nom] : [])))}
        <div className={fr.cx("fr-col-12", "fr-checkbox-group")}>
          <input type="checkbox" id="seulement-favoris" checked={filters.favoris} onChange={(e) => setFilters({ ...filters, favoris: e.target.checked })} />
          <label className={fr.cx("fr-label")} htmlFor="seulement-favoris">Seulement mes favoris</label>
        </div>
      </form>
      <Show loaded={shelf}>
        {({ ressources, total, gar }) => (
          <>
            {gar === "incomplet" && (
              <p className={fr.cx("fr-alert", "fr-alert--info", "fr-alert--sm")}>
                Les ressources du GAR d'un de vos établissements n'ont pas pu être lues : elles reviendront d'elles-mêmes.
              </p>
            )}
            <p role="status">{total === 0 ? "Aucune ressource." : `${total} ressource${total > 1 ? "s" : ""}`}</p>
            <ul className={fr.cx("fr-grid-row", "fr-grid-row--gutters")} aria-label="Ressources" style={{ listStyle: "none", paddingLeft: 0 }}>
              {ressources.slice(0, shown).map((r) => (
                <li key={r.idRessource} className={fr.cx("fr-col-12", "fr-col-sm-6", "fr-col-lg-4")}>
                  <div className={fr.cx("fr-card", "fr-card--sm")}>
                    <div className={fr.cx("fr-card__body")}>
                      <div className={fr.cx("fr-card__content")}>
                        <h2 className={fr.cx("fr-card__title", "fr-h6")}>
                          <a href={opening(r)} target="_blank" rel="noopener" title={`${r.nomRessource ?? r.idRessource} — nouvelle fenêtre`}>
                            {r.nomRessource ?? r.idRessource}
                          </a>
                        </h2>
                        <p className={fr.cx("fr-card__desc")}>
                          {[r.nomEditeur, r.typePresentation?.nom].filter(Boolean).join(" · ")}
                        </p>
                        <div className={fr.cx("fr-card__end")}>
                          <button
                            type="button"
                            className={fr.cx("fr-btn", "fr-btn--tertiary-no-outline", "fr-btn--sm", r.favori ? "fr-icon-star-fill" : "fr-icon-star-line", "fr-btn--icon-left")}
                            aria-pressed={r.favori}
                            onClick={() => favourite(r)}
                          >
                            {r.favori ? "Retirer des favoris" : "Ajouter aux favoris"}
                            <span className={fr.cx("fr-sr-only")}> : {r.nomRessource}</span>
                          </button>
                        </div>
                      </div>
                    </div>
                    {r.urlVignette && (
                      <div className={fr.cx("fr-card__header")}>
                        <div className={fr.cx("fr-card__img")}>
                          <img className="maille-tile-logo" src={r.urlVignette} alt="" loading="lazy" onError={(e) => e.currentTarget.closest<HTMLElement>(".fr-card__header")?.setAttribute("hidden", "")} />
                        </div>
                      </div>
                    )}
                  </div>
                </li>
              ))}
            </ul>
            {ressources.length > shown && (
              <button className={fr.cx("fr-btn", "fr-btn--secondary")} onClick={() => setShown(shown + PAGE)}>
                Afficher plus de ressources
              </button>
            )}
          </>
        )}
      </Show>
    </>
  );
}
