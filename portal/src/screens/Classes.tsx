import { useState } from "react";
import { fr } from "@codegouvfr/react-dsfr";
import { get } from "../api";
import { useMe } from "../session";
import type { Person } from "../types";
import { className, fullName } from "../words";
import { A, Show, useLoad } from "./common";

// A teacher's classes and groups with their pupils; writing to a class is one link away.
export function Classes() {
  const me = useMe();
  const groups = [...me.classes, ...(me.groups ?? [])];
  const [open, setOpen] = useState<string | null>(groups[0] ?? null);
  const school = (id: string) => me.schools.find((s) => id.startsWith(`${s.uai}$`))?.name ?? "";
  return (
    <>
      <h1>Mes classes et groupes</h1>
      {groups.length === 0 && <p>L'annuaire ne vous rattache à aucune classe.</p>}
      <ul className="maille-list">
        {groups.map((g) => (
          <li key={g}>
            <strong>{className(g)}</strong> — {school(g)}{" "}
            {/* A class's groups of the communication rules: its pupils (`…/ELV`), its pupils' parents (`…/TUT`). */}
            <A
              className={fr.cx("fr-btn", "fr-btn--sm", "fr-icon-mail-line", "fr-btn--icon-left", "fr-ml-1w")}
              href={`/messagerie/ecrire?${new URLSearchParams({ groupe: `${g}/ELV`, nom: `Élèves de ${className(g)}` })}`}
            >
              Écrire à la classe<span className={fr.cx("fr-sr-only")}> {className(g)}</span>
            </A>{" "}
            <A
              className={fr.cx("fr-btn", "fr-btn--sm", "fr-btn--secondary", "fr-ml-1w")}
              href={`/messagerie/ecrire?${new URLSearchParams({ groupe: `${g}/TUT`, nom: `Parents de ${className(g)}` })}`}
            >
              Écrire aux parents<span className={fr.cx("fr-sr-only")}> de {className(g)}</span>
            </A>{" "}
            <button className={fr.cx("fr-btn", "fr-btn--sm", "fr-btn--tertiary")} aria-expanded={open === g} onClick={() => setOpen(open === g ? null : g)}>
              {open === g ? "Masquer les élèves" : "Voir les élèves"}
            </button>
            {open === g && <Members group={g} />}
          </li>
        ))}
      </ul>
    </>
  );
}

function Members({ group }: { group: string }) {
  const [members] = useLoad(() => get<Person[]>(`/api/identity/v1/groups/${encodeURIComponent(group)}/members`), [group]);
  return (
    <Show loaded={members}>
      {(all) => (
        <ul>
          {all
            .filter((p) => p.kind === "pupil")
            .map((p) => (
              <li key={p.id}>{fullName(p)}</li>
            ))}
        </ul>
      )}
    </Show>
  );
}
