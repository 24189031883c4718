import { fr } from "@codegouvfr/react-dsfr";
import { get } from "../api";
import { useMe } from "../session";
import type { LibraryAccount, NewsItem, Person } from "../types";
import { className, describe, fullName, longDate } from "../words";
import { A, Show, useLoad } from "./common";

const DAY = new Intl.DateTimeFormat("fr-FR", { dateStyle: "long" });
const day = (iso: string | null) => (iso ? DAY.format(new Date(iso)) : "—");

// A parent's children, one at a time (`/enfants/<id>`): their school and class, their class's news, their CDI loans,
// and writing to their teachers. A parent of several switches from one to the other at the top.
export function Children({ path }: { path: string }) {
  const me = useMe();
  const wanted = path.split("?")[0].split("/")[2];
  const child = me.children.find((c) => c.id === wanted) ?? me.children[0];
  return (
    <>
      <h1>Mes enfants</h1>
      {child === undefined ? (
        <p>L'annuaire ne vous rattache à aucun enfant.</p>
      ) : (
        <>
          {me.children.length > 1 && (
            <nav aria-label="Choisir un enfant" className={fr.cx("fr-mb-2w")}>
              <ul className={fr.cx("fr-tags-group")}>
                {me.children.map((c) => (
                  <li key={c.id}>
                    <A className={fr.cx("fr-tag")} href={`/enfants/${c.id}`} aria-current={c.id === child.id ? "page" : undefined}>
                      {fullName(c)}
                    </A>
                  </li>
                ))}
              </ul>
            </nav>
          )}
          <Child key={child.id} child={child} />
        </>
      )}
      <p className={fr.cx("fr-mt-4w", "fr-text--sm")}>
        Un enfant manque, ou sa classe est fausse ? Ces informations viennent de l'annuaire de l'Éducation nationale :
        signalez-le au secrétariat de son établissement.
      </p>
    </>
  );
}

function Child({ child }: { child: Person }) {
  const me = useMe();
  const school = (uai: string) => me.schools.find((s) => s.uai === uai)?.name ?? uai;
  const [library] = useLoad(() => get<LibraryAccount>(`/api/library/v1/account?${new URLSearchParams({ enfant: child.id })}`), [child.id]);
  return (
    <section aria-labelledby="enfant-choisi">
      <h2 id="enfant-choisi">{fullName(child)}</h2>
      <ul>
        {describe(child.profiles, child.classes, me.schools).map((line) => (
          <li key={line}>{line}</li>
        ))}
      </ul>
      <div className={fr.cx("fr-grid-row", "fr-grid-row--gutters")}>
        <section className={fr.cx("fr-col-12", "fr-col-md-6")} aria-labelledby="enfant-actualites">
          <h3 id="enfant-actualites" className={fr.cx("fr-h5")}>Actualités de la classe</h3>
          {child.classes.length === 0 ? <p>Pas de classe dans l'annuaire.</p> : child.classes.map((c) => <ClassNews key={c} group={c} />)}
        </section>
        <section className={fr.cx("fr-col-12", "fr-col-md-6")} aria-labelledby="enfant-cdi">
          <h3 id="enfant-cdi" className={fr.cx("fr-h5")}>Ses prêts au CDI</h3>
          <Show loaded={library}>
            {(a) => {
              const loans = a.schools.flatMap((s) => [
                ...s.loans.late.map((l) => ({ ...l, late: true, uai: s.uai })),
                ...s.loans.current.map((l) => ({ ...l, late: false, uai: s.uai })),
              ]);
              return (
                <>
                  {loans.length === 0 ? (
                    <p>Aucun prêt en cours.</p>
                  ) : (
                    <ul>
                      {loans.map((l) => (
                        <li key={`${l.uai}-${l.recordId}`}>
                          {l.late && <span className={fr.cx("fr-badge", "fr-badge--sm", "fr-badge--error", "fr-mr-1w")}>En retard</span>}
                          {l.title} — à rendre le {day(l.due)} (CDI de {school(l.uai)})
                        </li>
                      ))}
                    </ul>
                  )}
                  {a.schools.length === 0 && a.missing.length > 0 && (
                    <p className={fr.cx("fr-text--sm")}>Le CDI de {a.missing.map((m) => school(m.uai)).join(", ")} ne peut pas être lu pour le moment.</p>
                  )}
                </>
              );
            }}
          </Show>
        </section>
      </div>
      <h3 className={fr.cx("fr-h5", "fr-mt-2w")}>Écrire</h3>
      <ul>
        {child.classes.map((c) => (
          <li key={c}>
            <A
              className={fr.cx("fr-link", "fr-icon-mail-line", "fr-link--icon-left")}
              href={`/messagerie/ecrire?${new URLSearchParams({ groupe: `${c}/ENS`, nom: `Enseignants de ${className(c)}` })}`}
            >
              Écrire aux enseignants de {className(c)}
            </A>
          </li>
        ))}
      </ul>
    </section>
  );
}

function ClassNews({ group }: { group: string }) {
  const board = `group:${group}`;
  const [news] = useLoad(() => get<{ items: NewsItem[] }>(`/api/timeline/v1/news?${new URLSearchParams({ board })}`), [board]);
  return (
    <Show loaded={news}>
      {({ items }) => (
        <>
          {items.length === 0 ? (
            <p>Aucune actualité de la classe {className(group)} pour l'instant.</p>
          ) : (
            <ul>
              {items.slice(0, 3).map((n) => (
                <li key={n.id}>
                  <A href={`/actualites/${n.id}`}>{n.read ? n.title : <strong>{n.title}</strong>}</A>
                  {!n.read && <span className="fr-sr-only"> (non lue)</span>}
                  {n.published_at && <small> — {longDate(n.published_at)}</small>}
                </li>
              ))}
            </ul>
          )}
          <p>
            <A className={fr.cx("fr-link")} href={`/actualites?${new URLSearchParams({ page: board })}`}>
              Toutes les actualités de la classe {className(group)}
            </A>
          </p>
        </>
      )}
    </Show>
  );
}
