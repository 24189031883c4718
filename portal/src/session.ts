// Who is signed in: identity's /me, read once; null while reading, "signed-out" without a session.
import { createContext, useContext } from "react";
import type { Me, Person } from "./types";

export type Session = Me | "signed-out" | "not-linked" | "unavailable" | null;

export const SessionContext = createContext<Me | null>(null);

export function useMe(): Me {
  const me = useContext(SessionContext);
  if (me === null) throw new Error("useMe outside a signed-in page");
  return me;
}

export async function readSession(): Promise<Session> {
  let answer: Response;
  try {
    answer = await fetch("/api/identity/v1/me", {
      credentials: "same-origin",
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(15_000),
    });
  } catch {
    return "unavailable";
  }
  if (answer.status === 401) return "signed-out";
  if (answer.status === 403 || answer.status === 404) return "not-linked";
  if (!answer.ok) return "unavailable";
  return normalised(await answer.json());
}

// The directory leaves out what a person does not have (a parent's classes): the portal reads them as empty.
function normalised(raw: Partial<Me>): Me {
  const person = <T extends Partial<Person>>(p: T) => ({ ...p, profiles: p.profiles ?? [], classes: p.classes ?? [], groups: p.groups ?? [] });
  return {
    ...person(raw),
    schools: raw.schools ?? [],
    children: (raw.children ?? []).map(person),
    operator: raw.operator ?? false,
    administers: raw.administers ?? [],
  } as Me;
}

export const isPupil = (me: Me) => me.profiles.some((p) => p.code === "National_ELV");
export const isParent = (me: Me) => me.profiles.some((p) => p.code === "National_TUT");
export const isStaff = (me: Me) => me.profiles.some((p) => !["National_ELV", "National_TUT"].includes(p.code));
