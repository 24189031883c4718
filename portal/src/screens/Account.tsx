import { fr } from "@codegouvfr/react-dsfr";
import { useMe } from "../session";
import { className, describe, fullName } from "../words";
import { A } from "./common";

// Who one is in the directory: one's profiles in words, one's schools, one's children; signing out.
export function Account() {
  const me = useMe();
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
          <ul className="maille-list">
            {me.children.map((child) => (
              <li key={child.id}>
                <strong>{fullName(child)}</strong>
                <br />
                {describe(child.profiles, child.classes, me.schools).join(" ; ")}
                <br />
                {child.classes.map((c) => (
                  <A
                    key={c}
                    className={fr.cx("fr-link", "fr-mr-2w")}
                    href={`/messagerie/ecrire?${new URLSearchParams({ groupe: `${c}/ENS`, nom: `Enseignants de ${className(c)}` })}`}
                  >
                    Écrire aux enseignants de {className(c)}
                  </A>
                ))}
              </li>
            ))}
          </ul>
        </section>
      )}
      <p className={fr.cx("fr-mt-4w")}>
        Une erreur dans votre nom, votre classe ou vos enfants ? Ces informations viennent de l'annuaire de l'Éducation
        nationale : signalez-la au secrétariat de votre établissement.
      </p>
    </>
  );
}
