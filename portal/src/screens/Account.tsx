import { fr } from "@codegouvfr/react-dsfr";
import { get } from "../api";
import { useMe } from "../session";
import { describe, fullName } from "../words";
import { A, Show, useLoad } from "./common";

// The directory entries one's sign-in may be (identity's answer): a parent with children in two schools has two.
interface Accounts {
  current: string;
  accounts: { id: string; first_name: string; last_name: string; schools: string[]; children: string[]; current: boolean }[];
}

function csrf(): string {
  const found = document.cookie.split("; ").find((c) => c.startsWith("maille_csrf="));
  return found ? decodeURIComponent(found.slice("maille_csrf=".length)) : "";
}

// Who one is in the directory: one's profiles in words, one's schools, one's children; the other accounts one's
// sign-in may be, to switch to; signing out.
export function Account() {
  const me = useMe();
  const [accounts] = useLoad(() => get<Accounts>("/api/identity/v1/accounts"), []);
  return (
    <>
      <h1>{fullName(me)}</h1>
      <h2 className={fr.cx("fr-h4")}>Mes profils</h2>
      <ul>
        {describe(me.profiles, me.classes, me.schools).map((line) => (
          <li key={line}>{line}</li>
        ))}
      </ul>
      {me.children.length > 0 && (
        <section aria-labelledby="enfants">
          <h2 id="enfants" className={fr.cx("fr-h4")}>Mes enfants</h2>
          <ul>
            {me.children.map((child) => (
              <li key={child.id}>
                <A href={`/enfants/${child.id}`}>{fullName(child)}</A> — {describe(child.profiles, child.classes, me.schools).join(" ; ")}
              </li>
            ))}
          </ul>
        </section>
      )}
      <Show loaded={accounts}>
        {({ accounts: all }) =>
          all.length > 1 && (
            <section aria-labelledby="comptes">
              <h2 id="comptes" className={fr.cx("fr-h4")}>Mes comptes</h2>
              <p>
                Votre connexion correspond à plusieurs fiches de l'annuaire (par exemple, des enfants dans deux établissements).
                Changez de compte pour voir l'autre établissement.
              </p>
              <ul className="maille-list">
                {all.map((a) => (
                  <li key={a.id}>
                    <strong>{`${a.first_name} ${a.last_name}`.trim()}</strong> — {a.schools.join(", ")}
                    {a.children.length > 0 && <> (enfants : {a.children.join(", ")})</>}
                    {a.current ? (
                      <span className={fr.cx("fr-badge", "fr-badge--sm", "fr-badge--info", "fr-ml-1w")}>Compte utilisé</span>
                    ) : (
                      <form method="post" action="/auth/choose" className={fr.cx("fr-mt-1w")}>
                        <input type="hidden" name="csrf" value={csrf()} />
                        <input type="hidden" name="choice" value={a.id} />
                        <input type="hidden" name="next" value="/" />
                        <button type="submit" className={fr.cx("fr-btn", "fr-btn--sm", "fr-btn--secondary")}>
                          Utiliser ce compte<span className={fr.cx("fr-sr-only")}> ({a.schools.join(", ")})</span>
                        </button>
                      </form>
                    )}
                  </li>
                ))}
              </ul>
            </section>
          )
        }
      </Show>
      <p className={fr.cx("fr-mt-4w")}>
        Une erreur dans votre nom, votre classe ou vos enfants ? Ces informations viennent de l'annuaire de l'Éducation
        nationale : signalez-la au secrétariat de votre établissement.
      </p>
    </>
  );
}
