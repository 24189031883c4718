import { fr } from "@codegouvfr/react-dsfr";
import { get } from "../api";
import { useMe } from "../session";
import type { Folder, LibraryAccount, Resource } from "../types";
import { describe, fullName, opening } from "../words";
import { A, Show, useLoad } from "./common";

// The first screen after signing in: unread mail, médiacentre favourites, CDI loans due — each a link.
export function Dashboard() {
  const me = useMe();
  const [folders] = useLoad(() => get<Folder[]>("/api/messaging/v1/folders"), []);
  const [favourites] = useLoad(
    () => get<{ ressources: Resource[] }>("/api/catalog/v1/mediacentre?favoris=true&limit=5"),
    [],
  );
  const [library] = useLoad(() => get<LibraryAccount>("/api/library/v1/account"), []);
  return (
    <>
      <h1>Bonjour {me.first_name}</h1>
      <ul className={fr.cx("fr-mb-4w")}>
        {describe(me.profiles, me.classes, me.schools).map((line) => (
          <li key={line}>{line}</li>
        ))}
      </ul>
      <div className={fr.cx("fr-grid-row", "fr-grid-row--gutters")}>
        <section className={fr.cx("fr-col-12", "fr-col-md-4")} aria-labelledby="tableau-messagerie">
          <h2 id="tableau-messagerie" className={fr.cx("fr-h4")}>Messagerie</h2>
          <Show loaded={folders}>
            {(all) => {
              const unread = all.find((f) => f.id === "inbox")?.unread ?? 0;
              return (
                <p>
                  <A className={fr.cx("fr-link", "fr-icon-mail-line", "fr-link--icon-left")} href="/messagerie">
                    {unread === 0 ? "Aucun message non lu" : unread === 1 ? "1 message non lu" : `${unread} messages non lus`}
                  </A>
                </p>
              );
            }}
          </Show>
        </section>
        <section className={fr.cx("fr-col-12", "fr-col-md-4")} aria-labelledby="tableau-favoris">
          <h2 id="tableau-favoris" className={fr.cx("fr-h4")}>Mes ressources favorites</h2>
          <Show loaded={favourites}>
            {({ ressources }) =>
              ressources.length === 0 ? (
                <p>
                  Aucune favorite pour l'instant. <A href="/mediacentre">Ouvrir le médiacentre</A>
                </p>
              ) : (
                <ul>
                  {ressources.map((r) => (
                    <li key={r.idRessource}>
                      <a href={opening(r)} target="_blank" rel="noopener" title={`${r.nomRessource} — nouvelle fenêtre`}>
                        {r.nomRessource ?? r.idRessource}
                      </a>
                    </li>
                  ))}
                </ul>
              )
            }
          </Show>
        </section>
        <section className={fr.cx("fr-col-12", "fr-col-md-4")} aria-labelledby="tableau-cdi">
          <h2 id="tableau-cdi" className={fr.cx("fr-h4")}>CDI</h2>
          <Show loaded={library}>
            {(account) => {
              const late = account.schools.flatMap((s) => s.loans.late);
              const current = account.schools.flatMap((s) => s.loans.current);
              return (
                <p>
                  <A className={fr.cx("fr-link", "fr-icon-book-2-line", "fr-link--icon-left")} href="/cdi">
                    {late.length > 0
                      ? `${late.length} prêt${late.length > 1 ? "s" : ""} en retard`
                      : current.length > 0
                        ? `${current.length} prêt${current.length > 1 ? "s" : ""} en cours`
                        : "Aucun prêt en cours"}
                  </A>
                </p>
              );
            }}
          </Show>
        </section>
      </div>
      {me.children.length > 0 && (
        <section aria-labelledby="tableau-enfants" className={fr.cx("fr-mt-4w")}>
          <h2 id="tableau-enfants" className={fr.cx("fr-h4")}>Mes enfants</h2>
          <ul>
            {me.children.map((child) => (
              <li key={child.id}>
                {fullName(child)} — {describe(child.profiles, child.classes, me.schools).join(" ; ")}
              </li>
            ))}
          </ul>
        </section>
      )}
    </>
  );
}
