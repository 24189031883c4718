// Words people know: "Élève de 6e A au Collège Bonnet", not National_ELV 0350001L$6A.

const PROFILES: Record<string, string> = {
  National_ELV: "Élève",
  National_TUT: "Parent",
  National_ENS: "Enseignant",
  National_DOC: "Professeur documentaliste",
  National_DIR: "Personnel de direction",
  National_EVS: "Vie scolaire",
  National_ETA: "Personnel de l'établissement",
  National_ACA: "Personnel de l'académie",
  National_COL: "Personnel de la collectivité",
};

export const profileName = (code: string): string => PROFILES[code] ?? "Personnel";

// A class's code as people say it: 6A → 6e A, 2NDE1 → 2de 1, TS2 → Tle S2.
export function className(code: string): string {
  const bare = code.includes("$") ? code.slice(code.indexOf("$") + 1) : code;
  const lycee = /^(2NDE|2DE|1ERE|1RE|TLE|T)\s*(.*)$/i.exec(bare);
  if (lycee) {
    const level = { "2NDE": "2de", "2DE": "2de", "1ERE": "1re", "1RE": "1re", TLE: "Tle", T: "Tle" }[lycee[1].toUpperCase()];
    return `${level} ${lycee[2]}`.trim();
  }
  const college = /^([3-6])\s*(?:EME|E)?\s*(.*)$/i.exec(bare);
  return college ? `${college[1]}e ${college[2]}`.trim() : bare;
}

export interface School {
  uai: string;
  name: string;
}

export interface Profile {
  code: string;
  structure: string;
}

function at(name: string): string {
  if (/^(coll[eè]ge|lyc[ée]e)/i.test(name)) return `au ${name}`;
  if (/^[ée]cole/i.test(name)) return `à l'${name}`;
  return `à ${name}`;
}

// "Élève de 6e A au Collège Bonnet" — one line per profile and school.
export function describe(profiles: Profile[] = [], classes: string[] = [], schools: School[] = []): string[] {
  const schoolName = (uai: string) => schools.find((s) => s.uai === uai)?.name ?? uai;
  return profiles.map((p) => {
    const own = classes.filter((c) => c.startsWith(`${p.structure}$`)).map(className);
    const where = at(schoolName(p.structure));
    const of = p.code === "National_ELV" && own.length ? ` de ${own.join(", ")}` : "";
    return `${profileName(p.code)}${of} ${where}`;
  });
}

export function fullName(person: { first_name?: string; last_name?: string }): string {
  return [person.first_name, person.last_name].filter(Boolean).join(" ");
}

const DAY = new Intl.DateTimeFormat("fr-FR", { day: "numeric", month: "short" });
const TIME = new Intl.DateTimeFormat("fr-FR", { hour: "2-digit", minute: "2-digit" });
const LONG = new Intl.DateTimeFormat("fr-FR", { dateStyle: "full", timeStyle: "short" });

export function when(iso: string): string {
  const at = new Date(iso);
  return at.toDateString() === new Date().toDateString() ? TIME.format(at) : DAY.format(at);
}

export const longDate = (iso: string): string => LONG.format(new Date(iso));

export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} o`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} ko`;
  return `${(bytes / 1024 / 1024).toFixed(1).replace(".", ",")} Mo`;
}

// A médiacentre resource opens through the catalog, which counts the opening (the observatory) and sends the browser
// on to the resource (the GAR's link, or the vendor's address).
export function opening(resource: { idRessource: string }): string {
  return `/api/catalog/v1/mediacentre/ouvrir/${encodeURI(resource.idRessource)}`;
}
