import { useState } from "react";
import { fr } from "@codegouvfr/react-dsfr";
import { call, explain, get } from "../api";
import { useMe } from "../session";
import type { LibraryAccount, LibraryResult } from "../types";
import { Failure, Notice, Show, useLoad } from "./common";

const DAY = new Intl.DateTimeFormat("fr-FR", { dateStyle: "long" });
const day = (iso: string | null) => (iso ? DAY.format(new Date(iso)) : "—");

// The CDI: a search across one's schools' catalogues, one's loans and reservations, reserve and cancel.
export function Library() {
  const me = useMe();
  const school = (uai: string) => me.schools.find((s) => s.uai === uai)?.name ?? uai;
  const [q, setQ] = useState("");
  const [sought, setSought] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [account, reloadAccount] = useLoad(() => get<LibraryAccount>("/api/library/v1/account"), []);
  const [found] = useLoad(
    () =>
      sought
        ? get<{ total: number; results: LibraryResult[]; missing: { uai: string }[] }>(
            `/api/library/v1/search?${new URLSearchParams({ q: sought, size: "20" })}`,
          )
        : Promise.resolve(null),
    [sought],
  );
  async function reserve(r: LibraryResult) {
    try {
      await call("POST", `/api/library/v1/schools/${r.uai}/reservations`, { recordId: r.id }, { "idempotency-key": crypto.randomUUID() });
      setMessage({ ok: true, text: `« ${r.title} » est réservé au CDI de ${school(r.uai)}.` });
      reloadAccount();
    } catch (e) {
      setMessage({ ok: false, text: explain(e) });
    }
  }
  async function cancel(uai: string, id: number) {
    try {
      await call("DELETE", `/api/library/v1/schools/${uai}/reservations/${id}`);
      setMessage({ ok: true, text: "Réservation annulée." });
      reloadAccount();
    } catch (e) {
      setMessage({ ok: false, text: explain(e) });
    }
  }
  return (
    <>
      <h1>CDI</h1>
      {message && (message.ok ? <Notice message={message.text} /> : <Failure message={message.text} />)}
      <form
        role="search"
        className={fr.cx("fr-mb-4w")}
        onSubmit={(e) => {
          e.preventDefault();
          setSought(q.trim());
        }}
      >
        <label className={fr.cx("fr-label")} htmlFor="recherche-cdi">Chercher un livre, un auteur, un sujet</label>
        <div className={fr.cx("fr-search-bar")}>
          <input className={fr.cx("fr-input")} id="recherche-cdi" type="search" value={q} onChange={(e) => setQ(e.target.value)} />
          <button className={fr.cx("fr-btn")} type="submit" title="Chercher">Chercher</button>
        </div>
      </form>
      {sought && (
        <section aria-labelledby="resultats-cdi" className={fr.cx("fr-mb-4w")}>
          <h2 id="resultats-cdi" className={fr.cx("fr-h4")}>Résultats pour « {sought} »</h2>
          <Show loaded={found}>
            {(page) =>
              page && (
                <>
                  {page.missing.length > 0 && (
                    <p className={fr.cx("fr-alert", "fr-alert--info", "fr-alert--sm")}>
                      Le CDI de {page.missing.map((m) => school(m.uai)).join(", ")} ne répond pas : ses livres manquent ici.
                    </p>
                  )}
                  <p role="status">{page.total === 0 ? "Aucun résultat." : `${page.total} résultat${page.total > 1 ? "s" : ""}`}</p>
                  <ul className="maille-list">
                    {page.results.map((r) => (
                      <li key={`${r.uai}:${r.id}`}>
                        <strong>{r.title}</strong>
                        {r.authors.length > 0 && <> — {r.authors.join(", ")}</>}
                        {r.year && <> ({r.year})</>}
                        <br />
                        <span className={fr.cx("fr-text--sm")}>
                          CDI de {school(r.uai)} ·{" "}
                          {r.available === null ? "disponibilité inconnue" : r.available > 0 ? "en rayon" : "tous les exemplaires sont prêtés"}
                        </span>
                        <br />
                        <button className={fr.cx("fr-btn", "fr-btn--sm", "fr-btn--secondary", "fr-mt-1w")} onClick={() => reserve(r)}>
                          Réserver<span className={fr.cx("fr-sr-only")}> « {r.title} »</span>
                        </button>
                      </li>
                    ))}
                  </ul>
                </>
              )
            }
          </Show>
        </section>
      )}
      <section aria-labelledby="mes-prets">
        <h2 id="mes-prets" className={fr.cx("fr-h4")}>Mes prêts et réservations</h2>
        <Show loaded={account}>
          {(a) => (
            <>
              {a.schools.length === 0 && <p>Aucun CDI de vos établissements n'est relié à l'ENT.</p>}
              {a.schools.map((s) => (
                <div key={s.uai} className={fr.cx("fr-mb-3w")}>
                  <h3 className={fr.cx("fr-h6")}>CDI de {school(s.uai)}</h3>
                  <ul>
                    {s.loans.late.map((l) => (
                      <li key={`late-${l.recordId}`}>
                        <span className={fr.cx("fr-badge", "fr-badge--sm", "fr-badge--error", "fr-mr-1w")}>En retard</span>
                        {l.title} — à rendre le {day(l.due)}
                      </li>
                    ))}
                    {s.loans.current.map((l) => (
                      <li key={`cur-${l.recordId}`}>{l.title} — à rendre le {day(l.due)}</li>
                    ))}
                    {s.reservations.map((r) => (
                      <li key={`resa-${r.id}`}>
                        Réservation n° {r.rank} dans la file
                        {r.until && <>, jusqu'au {day(r.until)}</>}{" "}
                        <button className={fr.cx("fr-btn", "fr-btn--sm", "fr-btn--tertiary")} onClick={() => cancel(s.uai, r.id)}>
                          Annuler
                        </button>
                      </li>
                    ))}
                    {s.loans.late.length + s.loans.current.length + s.reservations.length === 0 && <li>Aucun prêt ni réservation.</li>}
                  </ul>
                  {s.opac && (
                    <a className={fr.cx("fr-link", "fr-icon-external-link-line", "fr-link--icon-right")} href={s.opac} target="_blank" rel="noopener">
                      Le catalogue en ligne du CDI (nouvelle fenêtre)
                    </a>
                  )}
                </div>
              ))}
              {a.missing.length > 0 && (
                <p className={fr.cx("fr-text--sm")}>
                  Le CDI de {a.missing.map((m) => school(m.uai)).join(", ")} n'a pas pu être lu pour le moment.
                </p>
              )}
            </>
          )}
        </Show>
      </section>
    </>
  );
}
