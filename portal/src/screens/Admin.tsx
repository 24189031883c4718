import { useEffect, useState } from "react";
import { fr } from "@codegouvfr/react-dsfr";
import { call, explain, get, poll, tagged, upload } from "../api";
import { useMe } from "../session";
import { longDate } from "../words";
import { Failure, Listing, Notice, Show, useLoad, useOutcome } from "./common";

type Edge = [string, string];
interface Rules {
  structure: Edge[];
  class: Edge[];
  class_to_structure: Edge[];
  children_write_to_parents: boolean;
}

const KINDS: Record<string, string> = {
  ELV: "Élèves",
  ENS: "Enseignants",
  TUT: "Parents",
  PERS: "Personnels",
  DIR: "Direction",
  HT: "Professeurs principaux",
};
const SCHOOL = ["ELV", "ENS", "TUT", "PERS", "DIR"];
const CLASS = ["ELV", "ENS", "TUT", "HT"];

// The administration of a school (its principal and their delegates) and of the platform (operators): who may
// write to whom, the school's administrators, the directory's imports; for operators, an AAF delivery and the CDIs.
export function Admin() {
  const me = useMe();
  const [uai, setUai] = useState(me.administers[0] ?? "");
  const name = (code: string) => me.schools.find((s) => s.uai === code)?.name ?? code;
  return (
    <>
      <h1>Administration</h1>
      {me.administers.length > 1 && (
        <div className={fr.cx("fr-select-group")}>
          <label className={fr.cx("fr-label")} htmlFor="etablissement">Établissement</label>
          <select className={fr.cx("fr-select")} id="etablissement" value={uai} onChange={(e) => setUai(e.target.value)}>
            {me.administers.map((code) => (
              <option key={code} value={code}>{name(code)}</option>
            ))}
          </select>
        </div>
      )}
      {uai && (
        <>
          <h2 className={fr.cx("fr-h3")}>{name(uai)}</h2>
          <RulesEditor uai={uai} />
          <Administrators uai={uai} />
          <SchoolImports uai={uai} />
        </>
      )}
      {me.operator && (
        <>
          <h2 className={fr.cx("fr-h3", "fr-mt-6w")}>Plateforme</h2>
          <AafUpload />
          <GarExports />
          <Federations />
          <PmbConnections />
          <ObservatoryFigures />
        </>
      )}
    </>
  );
}

function Matrix(props: { legend: string; from: string[]; to: string[]; edges: Edge[]; onChange: (e: Edge[]) => void }) {
  const has = (a: string, b: string) => props.edges.some(([x, y]) => x === a && y === b);
  const toggle = (a: string, b: string) =>
    props.onChange(has(a, b) ? props.edges.filter(([x, y]) => !(x === a && y === b)) : [...props.edges, [a, b]]);
  return (
    <div className={fr.cx("fr-table", "fr-mb-3w")}>
      <table>
        <caption>{props.legend}</caption>
        <thead>
          <tr>
            <th scope="col">Peuvent écrire…</th>
            {props.to.map((b) => (
              <th key={b} scope="col">aux {KINDS[b].toLowerCase()}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.from.map((a) => (
            <tr key={a}>
              <th scope="row">{KINDS[a]}</th>
              {props.to.map((b) => (
                <td key={b}>
                  <input
                    type="checkbox"
                    checked={has(a, b)}
                    onChange={() => toggle(a, b)}
                    aria-label={`${props.legend} : les ${KINDS[a].toLowerCase()} peuvent écrire aux ${KINDS[b].toLowerCase()}`}
                  />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function RulesEditor({ uai }: { uai: string }) {
  const url = `/api/identity/v1/structures/${uai}/communication-rules`;
  const [state, setState] = useState<{ rules: Rules; defaults: boolean; etag: string | null } | null>(null);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const read = () =>
    tagged<{ rules: Rules; defaults: boolean }>("GET", url).then(
      ([body, etag]) => setState({ rules: body.rules, defaults: body.defaults, etag }),
      (e) => setMessage({ ok: false, text: explain(e) }),
    );
  useEffect(() => {
    setState(null);
    setMessage(null);
    read();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [uai]);
  if (!state) return message ? <Failure message={message.text} /> : <p>Chargement…</p>;
  const change = (rules: Rules) => setState({ ...state, rules });
  async function save() {
    try {
      const [, etag] = await tagged("PUT", url, state!.rules, state!.etag ? { "if-match": state!.etag } : {});
      setState({ ...state!, defaults: false, etag });
      setMessage({ ok: true, text: "Règles enregistrées : elles s'appliquent dès maintenant." });
    } catch (e) {
      setMessage({ ok: false, text: explain(e) });
    }
  }
  async function reset() {
    try {
      await call("DELETE", url);
      setMessage({ ok: true, text: "Règles par défaut rétablies." });
      read();
    } catch (e) {
      setMessage({ ok: false, text: explain(e) });
    }
  }
  return (
    <section aria-labelledby="regles" className={fr.cx("fr-mb-4w")}>
      <h3 id="regles" className={fr.cx("fr-h4")}>Qui peut écrire à qui</h3>
      <p>{state.defaults ? "L'établissement suit les règles par défaut." : "L'établissement a ses propres règles."}</p>
      {message && (message.ok ? <Notice message={message.text} /> : <Failure message={message.text} />)}
      <Matrix legend="Dans l'établissement" from={SCHOOL} to={SCHOOL} edges={state.rules.structure} onChange={(e) => change({ ...state.rules, structure: e })} />
      <Matrix legend="Dans chaque classe" from={CLASS} to={CLASS} edges={state.rules.class} onChange={(e) => change({ ...state.rules, class: e })} />
      <Matrix legend="De la classe vers l'établissement" from={CLASS} to={SCHOOL} edges={state.rules.class_to_structure} onChange={(e) => change({ ...state.rules, class_to_structure: e })} />
      <div className={fr.cx("fr-checkbox-group", "fr-mb-2w")}>
        <input type="checkbox" id="enfants-parents" checked={state.rules.children_write_to_parents} onChange={(e) => change({ ...state.rules, children_write_to_parents: e.target.checked })} />
        <label className={fr.cx("fr-label")} htmlFor="enfants-parents">Les élèves peuvent écrire à leurs parents</label>
      </div>
      <ul className={fr.cx("fr-btns-group", "fr-btns-group--inline-md")}>
        <li><button className={fr.cx("fr-btn")} onClick={save}>Enregistrer les règles</button></li>
        <li><button className={fr.cx("fr-btn", "fr-btn--secondary")} onClick={reset}>Revenir aux règles par défaut</button></li>
      </ul>
    </section>
  );
}

interface Named {
  id: string;
  first_name: string;
  last_name: string;
}

function Administrators({ uai }: { uai: string }) {
  const [admins] = useLoad(() => get<{ principals: Named[]; delegates: Named[] }>(`/api/identity/v1/structures/${uai}/administrators`), [uai]);
  return (
    <section aria-labelledby="administrateurs" className={fr.cx("fr-mb-4w")}>
      <h3 id="administrateurs" className={fr.cx("fr-h4")}>Administrateurs</h3>
      <Show loaded={admins}>
        {(a) => (
          <ul>
            {a.principals.map((p) => <li key={p.id}>{p.first_name} {p.last_name} (chef d'établissement)</li>)}
            {a.delegates.map((p) => <li key={p.id}>{p.first_name} {p.last_name} (délégation du chef d'établissement)</li>)}
          </ul>
        )}
      </Show>
    </section>
  );
}

interface Job {
  id: string;
  state: string;
  file?: string;
  created_at?: string;
  finished_at?: string;
  summary?: Record<string, number | string> | null;
  report?: string[];
  progress?: Record<string, number>;
}

const STATES: Record<string, string> = { queued: "en attente", running: "en cours", done: "terminé", failed: "échoué" };

function SchoolImports({ uai }: { uai: string }) {
  const [jobs] = useLoad(() => get<Job[]>(`/api/identity/v1/structures/${uai}/imports`), [uai]);
  return (
    <section aria-labelledby="imports" className={fr.cx("fr-mb-4w")}>
      <h3 id="imports" className={fr.cx("fr-h4")}>Mises à jour de l'annuaire</h3>
      <Show loaded={jobs}>
        {(all) =>
          all.length === 0 ? (
            <p>Aucune mise à jour récente.</p>
          ) : (
            <ul className="maille-list">
              {all.map((job) => (
                <li key={job.id}>
                  {job.created_at ? longDate(job.created_at) : job.id} — {STATES[job.state] ?? job.state}
                  {job.file && <> ({job.file})</>}
                  {job.report && job.report.length > 0 && (
                    <details>
                      <summary>{job.report.length} remarque{job.report.length > 1 ? "s" : ""} sur l'établissement</summary>
                      <ul>{job.report.map((line, n) => <li key={n}>{line}</li>)}</ul>
                    </details>
                  )}
                </li>
              ))}
            </ul>
          )
        }
      </Show>
    </section>
  );
}

function AafUpload() {
  const [progress, setProgress] = useState<number | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!job || ["done", "failed"].includes(job.state)) return;
    const timer = setTimeout(
      () => poll<Job>(`/api/identity/v1/operator/imports/${job.id}`).then(setJob, (e) => setError(explain(e))),
      2000,
    );
    return () => clearTimeout(timer);
  }, [job]);
  async function send(files: FileList | null) {
    const file = files?.[0];
    if (!file) return;
    setError(null);
    setJob(null);
    try {
      setProgress(0);
      const started = await upload<Job>(`/api/identity/v1/operator/imports?${new URLSearchParams({ filename: file.name })}`, file, setProgress);
      setJob(started);
    } catch (e) {
      setError(explain(e));
    } finally {
      setProgress(null);
    }
  }
  return (
    <section aria-labelledby="aaf" className={fr.cx("fr-mb-4w")}>
      <h3 id="aaf" className={fr.cx("fr-h4")}>Importer une livraison de l'annuaire (AAF)</h3>
      {error && <Failure message={error} />}
      <div className={fr.cx("fr-upload-group")}>
        <label className={fr.cx("fr-label")} htmlFor="livraison-aaf">
          Fichier de l'AAF
          <span className={fr.cx("fr-hint-text")}>Un fichier XML (ENT_…_Complet_…xml ou …_Delta_…) ou une archive .tar.gz.</span>
        </label>
        <input className={fr.cx("fr-upload")} type="file" id="livraison-aaf" accept=".xml,.gz,.tgz" onChange={(e) => send(e.target.files)} />
      </div>
      {progress !== null && (
        <p role="status">
          <label htmlFor="envoi-aaf">Envoi : </label>
          <progress id="envoi-aaf" max={1} value={progress} /> {Math.round(progress * 100)} %
        </p>
      )}
      {job && (
        <div role="status" className={fr.cx("fr-mt-2w")}>
          <p>Import {STATES[job.state] ?? job.state}.</p>
          {job.summary && (
            <ul>
              {Object.entries(job.summary).map(([key, value]) => (
                <li key={key}>{key} : {String(value)}</li>
              ))}
            </ul>
          )}
          {["done", "failed"].includes(job.state) && (
            <a className={fr.cx("fr-link")} href={`/api/identity/v1/operator/imports/${job.id}/report`} target="_blank" rel="noopener">
              Le rapport de l'import (nouvelle fenêtre)
            </a>
          )}
        </div>
      )}
    </section>
  );
}

interface Connection {
  uai: string;
  url: string;
  database: string | null;
  opacUrl: string | null;
  syncReaders: boolean;
}

interface GarRun {
  id: string;
  night: string;
  trigger: string;
  started_at: string;
  finished_at: string | null;
  outcome: "running" | "done" | "failed";
  files: number | null;
  records: Record<string, number>;
  left_out: number | null;
  pushed: boolean | null;
  error: string;
}

const OUTCOMES: Record<string, string> = { running: "En cours", done: "Réussi", failed: "Échec" };
const GAR_RECORDS: Record<string, string> = {
  Etab: "établissements",
  Eleve: "élèves",
  Enseignant: "personnels",
  Groupe: "classes et groupes",
  RespAff: "responsables d'affectation",
};

// The GAR export: its last runs (each night's, and those an operator started), and a run now after a failed night.
function GarExports() {
  const [runs, reload] = useLoad(() => get<GarRun[]>("/api/identity/v1/operator/gar/exports"), []);
  const { attempt, outcome } = useOutcome();
  const [started, setStarted] = useState("");
  const listed = runs.state === "ok" ? runs.value : [];
  // Read again every few seconds while a run goes on (or the one just started is not listed yet).
  const running = listed.some((r) => r.outcome === "running") || (started !== "" && !listed.some((r) => r.id === started));
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => reload(), 2000);
    return () => clearInterval(timer);
  }, [running, reload]);

  const start = () =>
    attempt(async () => {
      const run = await call<GarRun>("POST", "/api/identity/v1/operator/gar/exports");
      setStarted(run.id);
      reload();
      return "L'export vers le GAR est lancé : son résultat s'affiche ci-dessous.";
    });

  return (
    <section aria-labelledby="gar" className={fr.cx("fr-mb-4w")}>
      <h3 id="gar" className={fr.cx("fr-h4")}>Exports de l'annuaire vers le GAR</h3>
      {outcome}
      <button className={fr.cx("fr-btn", "fr-btn--secondary", "fr-mb-2w")} onClick={start} disabled={running}>
        Exporter maintenant
      </button>
      <Show loaded={runs}>
        {(all) => (
          <Listing
            items={all}
            empty="Aucun export pour l'instant."
            caption="Derniers exports (les plus récents d'abord)"
            columns={["Lancé", "Par", "Résultat", "Fiches", "Déposé au GAR"]}
            row={(r) => (
              <tr key={r.id}>
                <td>{longDate(r.started_at)}</td>
                <td>{r.trigger === "nightly" ? "Export de la nuit" : "Un exploitant"}</td>
                <td>
                  {OUTCOMES[r.outcome] ?? r.outcome}
                  {r.error ? ` : ${r.error}` : ""}
                </td>
                <td>
                  {Object.entries(r.records).map(([k, v]) => `${v.toLocaleString("fr-FR")} ${GAR_RECORDS[k] ?? k}`).join(", ") || "—"}
                  {r.left_out ? ` (${r.left_out} écartées)` : ""}
                </td>
                <td>{r.pushed === null ? "—" : r.pushed ? "oui" : "non (pas de dépôt configuré)"}</td>
              </tr>
            )}
          />
        )}
      </Show>
    </section>
  );
}

function PmbConnections() {
  const [list] = useLoad(() => get<Connection[]>("/api/library/v1/operator/schools"), []);
  return (
    <section aria-labelledby="pmb" className={fr.cx("fr-mb-4w")}>
      <h3 id="pmb" className={fr.cx("fr-h4")}>CDI reliés (PMB)</h3>
      <Show loaded={list}>
        {(all) => (
          <Listing
            items={all}
            empty="Aucun CDI relié."
            caption="Connexions PMB des établissements"
            columns={["Établissement (UAI)", "Base PMB", "Lecteurs synchronisés", "Catalogue en ligne"]}
            row={(c) => (
              <tr key={c.uai}>
                <td>{c.uai}</td>
                <td>{c.database ?? "—"}</td>
                <td>{c.syncReaders ? "oui" : "non"}</td>
                <td>{c.opacUrl ?? "—"}</td>
              </tr>
            )}
          />
        )}
      </Show>
    </section>
  );
}

interface Federation {
  alias: string;
  name: string;
  issuer: string;
  structures: string[];
}

// The partner collectivités whose agents sign in through their own identity provider.
function Federations() {
  const [list] = useLoad(() => get<Federation[]>("/api/identity/v1/federations"), []);
  return (
    <section aria-labelledby="collectivites" className={fr.cx("fr-mb-4w")}>
      <h3 id="collectivites" className={fr.cx("fr-h4")}>Collectivités fédérées</h3>
      <Show loaded={list}>
        {(all) =>
          all.length === 0 ? (
            <p>Aucune collectivité ne connecte encore ses agents par son propre fournisseur d'identité.</p>
          ) : (
            <ul className="maille-list">
              {all.map((f) => (
                <li key={f.alias}>
                  <strong>{f.name}</strong> — {f.structures.length} établissement{f.structures.length > 1 ? "s" : ""}
                  <br />
                  <span className={fr.cx("fr-text--sm")}>{f.issuer}</span>
                </li>
              ))}
            </ul>
          )
        }
      </Show>
    </section>
  );
}

interface ObservatoryTechnical {
  folded: number;
  rejected: Record<string, number>;
  last_seq: number;
  flushed_seq: number;
  held: number;
  stream_messages: number | null;
  stream_bytes: number | null;
  pending: number | null;
  schools: number;
  persons: number;
}

const REJECTED: Record<string, string> = {
  "too-late": "trop anciens (plus de 30 jours)",
  "in-the-future": "datés dans le futur",
  "no-pseudonym": "sans pseudonyme",
  "unknown-kind": "d'un type inconnu",
  malformed: "illisibles",
};

// The observatory as operators see it: its technical figures only (no figure of use).
function ObservatoryFigures() {
  const [figures] = useLoad(() => get<ObservatoryTechnical>("/api/observatory/v1/operator/figures"), []);
  return (
    <section aria-labelledby="observatoire-technique" className={fr.cx("fr-mb-4w")}>
      <h3 id="observatoire-technique" className={fr.cx("fr-h4")}>Observatoire des usages : son fonctionnement</h3>
      <Show loaded={figures}>
        {(f) => {
          const left = Object.entries(f.rejected);
          return (
            <ul>
              <li>{f.folded.toLocaleString("fr-FR")} usages comptés depuis son démarrage ; {f.pending ?? "?"} en attente de comptage.</li>
              <li>
                {left.length === 0
                  ? "Aucun usage écarté."
                  : `Usages écartés : ${left.map(([why, n]) => `${n.toLocaleString("fr-FR")} ${REJECTED[why] ?? why}`).join(", ")}.`}
              </li>
              <li>
                {f.flushed_seq === f.last_seq ? "Tout ce qui a été compté est enregistré." : `${(f.last_seq - f.flushed_seq).toLocaleString("fr-FR")} envois comptés pas encore enregistrés.`}
              </li>
              <li>
                Usages bruts conservés (30 jours au plus) : {f.stream_messages === null ? "inconnu" : `${f.stream_messages.toLocaleString("fr-FR")} envois, ${Math.round((f.stream_bytes ?? 0) / 1_048_576).toLocaleString("fr-FR")} Mo`}.
              </li>
              <li>Annuaire : {f.schools.toLocaleString("fr-FR")} établissements, {f.persons.toLocaleString("fr-FR")} personnes.</li>
            </ul>
          );
        }}
      </Show>
    </section>
  );
}
