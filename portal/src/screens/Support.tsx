import { useEffect, useRef, useState } from "react";
import { fr } from "@codegouvfr/react-dsfr";
import { call, explain, failedRequests, get, upload } from "../api";
import { navigate, previousPage } from "../router";
import type { Article, ArticleHit, HelpMessage, HelpPage, HelpRequest, HelpRequestSummary, SupportOverview } from "../types";
import { longDate, profileName, size, when } from "../words";
import { A, Failure, Notice, Show, useLoad, useOutcome } from "./common";

const API = "/api/support/v1";
const DESK_KINDS: Record<string, string> = {
  academie: "Support de l'académie",
  collectivite: "Assistance de la collectivité (matériel, réseau)",
  platform: "Exploitants de la plateforme (panne de l'ENT)",
};
const ARTICLE_PROFILES = ["National_ELV", "National_TUT", "National_ENS", "National_DOC", "National_DIR", "National_EVS"];

// Aide: /aide, /aide/articles/<id>, /aide/articles/ecrire, /aide/articles/<id>/modifier, /aide/demandes/nouvelle,
// /aide/demandes/<id>, /aide/file (the queues of referents and desks).
export function Support({ path }: { path: string }) {
  const rest = path.split("?")[0].split("/").slice(2);
  const [overview] = useLoad(() => get<SupportOverview>(`${API}/me`), []);
  return (
    <Show loaded={overview}>
      {(me) => {
        if (rest[0] === "articles" && rest[1] === "ecrire") return <Editor me={me} />;
        if (rest[0] === "articles" && rest[1] && rest[2] === "modifier") return <Editor me={me} id={rest[1]} />;
        if (rest[0] === "articles" && rest[1]) return <ArticlePage me={me} id={rest[1]} />;
        if (rest[0] === "demandes" && rest[1] === "nouvelle") return <Ask me={me} />;
        if (rest[0] === "demandes" && rest[1]) return <RequestPage me={me} id={rest[1]} />;
        if (rest[0] === "file") return <Queue me={me} />;
        return <Home me={me} />;
      }}
    </Show>
  );
}

function handles(me: SupportOverview): boolean {
  return me.referent_of.length > 0 || me.desks.length > 0;
}

function StatusBadge({ r }: { r: HelpRequestSummary }) {
  const tone = { new: "new", open: "info", waiting: "warning", resolved: "success", closed: "" }[r.status] ?? "";
  return (
    <span className={`${fr.cx("fr-badge", "fr-badge--sm")}${tone ? ` fr-badge--${tone}` : ""}`}>{r.status_label}</span>
  );
}

// What one types, searched in the knowledge base as one types (a short pause between keys, the last call wins).
function useSearch(text: string, category?: string): ArticleHit[] {
  const [hits, setHits] = useState<ArticleHit[]>([]);
  useEffect(() => {
    if (text.trim().length < 2) {
      setHits([]);
      return;
    }
    let live = true;
    const timer = setTimeout(() => {
      const query = new URLSearchParams({ q: text, ...(category ? { category } : {}) });
      get<ArticleHit[]>(`${API}/articles/search?${query}`).then(
        (found) => live && setHits(found),
        () => live && setHits([]),
      );
    }, 150);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [text, category]);
  return hits;
}

function Hits({ hits, title }: { hits: ArticleHit[]; title: string }) {
  if (hits.length === 0) return null;
  return (
    <section aria-labelledby="suggestions" className={fr.cx("fr-mb-3w")}>
      <h2 id="suggestions" className={fr.cx("fr-h6")}>{title}</h2>
      <ul className="maille-list" aria-live="polite">
        {hits.map((h) => (
          <li key={h.id}>
            <A href={`/aide/articles/${h.id}`}>{h.title}</A>
            {h.tutorial && <span className={fr.cx("fr-badge", "fr-badge--sm", "fr-badge--blue-ecume", "fr-ml-1w")}>Tutoriel</span>}
            <p className={fr.cx("fr-mb-0", "fr-text--sm")}>{h.excerpt}</p>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Home({ me }: { me: SupportOverview }) {
  const [text, setText] = useState("");
  const hits = useSearch(text);
  const [articles] = useLoad(() => get<ArticleHit[]>(`${API}/articles`), []);
  const [mine] = useLoad(() => get<HelpPage>(`${API}/requests?size=10`), []);
  return (
    <>
      <h1>Aide</h1>
      <div className={fr.cx("fr-search-bar", "fr-mb-2w")} role="search">
        <label className={fr.cx("fr-label")} htmlFor="aide-recherche">
          Décrivez votre question
        </label>
        <input
          className={fr.cx("fr-input")}
          id="aide-recherche"
          type="search"
          placeholder="Par exemple : mot de passe oublié"
          value={text}
          onChange={(e) => setText(e.target.value)}
          autoComplete="off"
        />
      </div>
      <Hits hits={hits} title="Ces articles répondent peut-être à votre question" />
      <ul className={fr.cx("fr-btns-group", "fr-btns-group--inline-md")}>
        <li>
          <A className={fr.cx("fr-btn", "fr-icon-question-line", "fr-btn--icon-left")} href="/aide/demandes/nouvelle">
            Demander de l'aide
          </A>
        </li>
        {handles(me) && (
          <li>
            <A className={fr.cx("fr-btn", "fr-btn--secondary")} href="/aide/file">
              Demandes à traiter
            </A>
          </li>
        )}
        {me.writes.length > 0 && (
          <li>
            <A className={fr.cx("fr-btn", "fr-btn--tertiary")} href="/aide/articles/ecrire">
              Écrire un article
            </A>
          </li>
        )}
      </ul>
      <section aria-labelledby="mes-demandes">
        <h2 id="mes-demandes" className={fr.cx("fr-h4")}>Mes demandes</h2>
        <Show loaded={mine}>
          {(page) => (page.items.length === 0 ? <p>Vous n'avez pas encore demandé d'aide.</p> : <RequestList items={page.items} />)}
        </Show>
      </section>
      <section aria-labelledby="articles">
        <h2 id="articles" className={fr.cx("fr-h4")}>Tutoriels et réponses</h2>
        <Show loaded={articles}>
          {(all) => (
            <ul className="maille-list">
              {all.map((h) => (
                <li key={h.id}>
                  <A href={`/aide/articles/${h.id}`}>{h.title}</A> <small>— {h.category_label}</small>
                </li>
              ))}
            </ul>
          )}
        </Show>
      </section>
    </>
  );
}

function RequestList({ items, picked, pick }: { items: HelpRequestSummary[]; picked?: Set<string>; pick?: (id: string) => void }) {
  return (
    <ul className="maille-list">
      {items.map((r) => (
        <li key={r.id}>
          {pick && picked && (
            <div className={fr.cx("fr-checkbox-group", "fr-checkbox-group--sm")}>
              <input type="checkbox" id={`choix-${r.id}`} checked={picked.has(r.id)} onChange={() => pick(r.id)} />
              <label className={fr.cx("fr-label")} htmlFor={`choix-${r.id}`}>
                <span className="fr-sr-only">Choisir « {r.subject} »</span>
              </label>
            </div>
          )}
          <A href={`/aide/demandes/${r.id}`}>{r.subject}</A> <StatusBadge r={r} />
          {r.overdue && (
            <span className={fr.cx("fr-badge", "fr-badge--sm", "fr-badge--error", "fr-ml-1w")}>
              {r.overdue === "first_answer" ? "Sans réponse dans les délais" : "En retard"}
            </span>
          )}
          <br />
          <small>
            {r.category_label} · {r.school_name} · {r.desk_name}
            {pick ? ` · ${r.author_name} (${profileName(r.profile)})` : ""}
            {r.assignee_name ? ` · suivie par ${r.assignee_name}` : ""} · {when(r.updated_at)}
          </small>
        </li>
      ))}
    </ul>
  );
}

// Asking: the school, what it is about, the subject (articles offered as one types), the words, screenshots.
function Ask({ me }: { me: SupportOverview }) {
  const [uai, setUai] = useState(me.schools[0]?.uai ?? "");
  const [category, setCategory] = useState("");
  const [subject, setSubject] = useState("");
  const [description, setDescription] = useState("");
  const [files, setFiles] = useState<File[]>([]);
  const [progress, setProgress] = useState("");
  const [error, setError] = useState("");
  const [sending, setSending] = useState(false);
  const hits = useSearch(subject, category || undefined);

  if (me.schools.length === 0) {
    return (
      <>
        <h1>Demander de l'aide</h1>
        <Failure message="L'annuaire ne vous rattache à aucun établissement : adressez-vous au secrétariat de votre établissement." />
      </>
    );
  }

  async function send(event: React.FormEvent) {
    event.preventDefault();
    setError("");
    setSending(true);
    try {
      const made = await call<HelpRequest>("POST", `${API}/requests`, {
        category,
        uai,
        subject,
        description,
        context: { page: previousPage() || document.referrer.replace(location.origin, ""), browser: navigator.userAgent.slice(0, 300), failed_requests: failedRequests() },
      });
      for (const [n, file] of files.entries()) {
        setProgress(`Envoi de ${file.name} (${n + 1} sur ${files.length})…`);
        await upload(`${API}/requests/${made.id}/files?${new URLSearchParams({ name: file.name })}`, file, (share) =>
          setProgress(`Envoi de ${file.name} : ${Math.round(share * 100)} %`),
        );
      }
      navigate(`/aide/demandes/${made.id}`);
    } catch (e) {
      setError(explain(e));
      setSending(false);
      setProgress("");
    }
  }

  return (
    <>
      <h1>Demander de l'aide</h1>
      <p>Votre demande va d'abord aux référents numériques de votre établissement ; ils la transmettent au bon support si besoin.</p>
      {error && <Failure message={error} />}
      <form onSubmit={send}>
        {me.schools.length > 1 && (
          <div className={fr.cx("fr-select-group")}>
            <label className={fr.cx("fr-label")} htmlFor="demande-etablissement">
              Établissement concerné
            </label>
            <select className={fr.cx("fr-select")} id="demande-etablissement" value={uai} onChange={(e) => setUai(e.target.value)} required>
              {me.schools.map((s) => (
                <option key={s.uai} value={s.uai}>{s.name}</option>
              ))}
            </select>
          </div>
        )}
        <div className={fr.cx("fr-select-group")}>
          <label className={fr.cx("fr-label")} htmlFor="demande-categorie">
            C'est à propos de
          </label>
          <select className={fr.cx("fr-select")} id="demande-categorie" value={category} onChange={(e) => setCategory(e.target.value)} required>
            <option value="" disabled>Choisissez</option>
            {me.categories.map((c) => (
              <option key={c.code} value={c.code}>{c.label}</option>
            ))}
          </select>
        </div>
        <div className={fr.cx("fr-input-group")}>
          <label className={fr.cx("fr-label")} htmlFor="demande-objet">
            Objet
            <span className={fr.cx("fr-hint-text")}>En quelques mots : « Le manuel de maths ne s'ouvre pas »</span>
          </label>
          <input className={fr.cx("fr-input")} id="demande-objet" value={subject} onChange={(e) => setSubject(e.target.value)} minLength={3} maxLength={200} required autoComplete="off" />
        </div>
        <Hits hits={hits} title="Avant d'envoyer : ces articles répondent peut-être à votre question" />
        <div className={fr.cx("fr-input-group")}>
          <label className={fr.cx("fr-label")} htmlFor="demande-description">
            Description
            <span className={fr.cx("fr-hint-text")}>Ce que vous faisiez, ce qui s'est passé, le message affiché.</span>
          </label>
          <textarea className={fr.cx("fr-input")} id="demande-description" rows={6} value={description} onChange={(e) => setDescription(e.target.value)} maxLength={20000} required />
        </div>
        <div className={fr.cx("fr-upload-group", "fr-mb-3w")}>
          <label className={fr.cx("fr-label")} htmlFor="demande-fichiers">
            Captures d'écran ou fichiers (facultatif)
            <span className={fr.cx("fr-hint-text")}>Images, PDF ou documents, 10 Mo au plus chacun.</span>
          </label>
          <input className={fr.cx("fr-upload")} type="file" id="demande-fichiers" multiple onChange={(e) => setFiles(Array.from(e.target.files ?? []))} />
        </div>
        <p className={fr.cx("fr-text--sm")}>
          Pour aider le référent, la demande indique aussi votre profil, votre établissement, votre navigateur et la page où vous étiez.
        </p>
        {progress && <p aria-live="polite">{progress}</p>}
        <button className={fr.cx("fr-btn")} type="submit" disabled={sending}>
          Envoyer la demande
        </button>
      </form>
    </>
  );
}

function Thread({ messages }: { messages: HelpMessage[] }) {
  return (
    <ol className="maille-list" aria-label="Échanges">
      {messages.map((m) => (
        <li key={m.id} className={m.internal ? "maille-internal" : ""}>
          <p className={fr.cx("fr-mb-1v")}>
            <strong>{m.role === "author" ? m.author_name || "La personne" : m.by || m.author_name}</strong>
            {m.role !== "author" && m.author_name ? ` (${m.author_name})` : ""}
            {m.internal && <span className={fr.cx("fr-badge", "fr-badge--sm", "fr-ml-1w")}>Note interne</span>} <small>— {longDate(m.at)}</small>
          </p>
          <p className="maille-body maille-pre">{m.text}</p>
        </li>
      ))}
    </ol>
  );
}

function RequestPage({ me, id }: { me: SupportOverview; id: string }) {
  const [loaded, reload] = useLoad(() => get<HelpRequest>(`${API}/requests/${id}`), [id]);
  const [text, setText] = useState("");
  const [internal, setInternal] = useState(false);
  const [status, setStatus] = useState("");
  const [to, setTo] = useState("");
  const [note, setNote] = useState("");
  const { attempt, outcome } = useOutcome();
  const act = (method: string, path: string, body: unknown, done: string) =>
    attempt(async () => {
      await call(method, `${API}${path}`, body);
      reload();
      return done;
    });

  return (
    <Show loaded={loaded}>
      {(r) => (
        <>
          <p>
            <A href={handles(me) && r.can.note ? "/aide/file" : "/aide"}>← {handles(me) && r.can.note ? "Demandes à traiter" : "Aide"}</A>
          </p>
          <h1>{r.subject}</h1>
          <p>
            <StatusBadge r={r} /> <small>{r.category_label} · {r.school_name} · {r.desk_name} · ouverte le {longDate(r.opened_at)}</small>
          </p>
          {outcome}
          {r.can.note && (
            <p>
              <strong>{r.author_name}</strong> — {profileName(r.profile)}
              {r.assignee_name ? ` · suivie par ${r.assignee_name}` : " · personne ne la suit encore"}
              {r.tracker_issue ? ` · ticket n° ${r.tracker_issue}` : ""}
            </p>
          )}
          <p className="maille-body maille-pre">{r.description}</p>
          {r.context && (
            <details className={fr.cx("fr-mb-2w")}>
              <summary>Contexte ajouté par l'ENT</summary>
              <ul>
                <li>Page : {r.context.page || "—"}</li>
                <li>Navigateur : {r.context.browser || "—"}</li>
                <li>Appels en échec : {r.context.failed_requests.join(", ") || "aucun"}</li>
              </ul>
            </details>
          )}
          {r.files.length > 0 && (
            <ul>
              {r.files.map((f) => (
                <li key={f.id}>
                  <a href={`${API}/requests/${r.id}/files/${f.id}`} download={f.name}>
                    {f.name}
                  </a>{" "}
                  <small>({size(f.size)})</small>
                </li>
              ))}
            </ul>
          )}
          <Thread messages={r.messages} />
          {r.can.reply ? (
            <form
              onSubmit={async (e) => {
                e.preventDefault();
                if (await act("POST", `/requests/${r.id}/messages`, { text, internal, status: status || null }, internal ? "Note ajoutée." : "Réponse envoyée.")) {
                  setText("");
                  setStatus("");
                }
              }}
            >
              <div className={fr.cx("fr-input-group")}>
                <label className={fr.cx("fr-label")} htmlFor="reponse">
                  {r.can.note ? "Votre réponse" : "Ajouter une précision ou répondre"}
                </label>
                <textarea className={fr.cx("fr-input")} id="reponse" rows={4} value={text} onChange={(e) => setText(e.target.value)} required maxLength={20000} />
              </div>
              {r.can.note && (
                <>
                  <div className={fr.cx("fr-checkbox-group", "fr-mb-2w")}>
                    <input type="checkbox" id="interne" checked={internal} onChange={(e) => setInternal(e.target.checked)} />
                    <label className={fr.cx("fr-label")} htmlFor="interne">
                      Note interne (la personne ne la voit pas)
                    </label>
                  </div>
                  <div className={fr.cx("fr-select-group")}>
                    <label className={fr.cx("fr-label")} htmlFor="etat-apres">
                      Et la demande devient
                    </label>
                    <select className={fr.cx("fr-select")} id="etat-apres" value={status} onChange={(e) => setStatus(e.target.value)}>
                      <option value="">(inchangée)</option>
                      {r.can.statuses.map((s) => (
                        <option key={s} value={s}>{me.statuses.find((c) => c.code === s)?.label ?? s}</option>
                      ))}
                    </select>
                  </div>
                </>
              )}
              <button className={fr.cx("fr-btn")} type="submit">
                Envoyer
              </button>
            </form>
          ) : (
            <p>Cette demande est fermée. Si le problème revient, faites une nouvelle demande.</p>
          )}
          <ul className={fr.cx("fr-btns-group", "fr-btns-group--inline-md", "fr-mt-3w")}>
            {!r.can.note && r.can.statuses.includes("resolved") && r.status !== "resolved" && (
              <li>
                <button className={fr.cx("fr-btn", "fr-btn--secondary")} onClick={() => act("PUT", `/requests/${r.id}/status`, { status: "resolved" }, "Merci : la demande est résolue.")}>
                  Mon problème est résolu
                </button>
              </li>
            )}
            {r.can.assign && (
              <li>
                <button className={fr.cx("fr-btn", "fr-btn--secondary")} onClick={() => act("POST", "/assign", { ids: [r.id], assignee: "me" }, "La demande vous est attribuée.")}>
                  Je m'en occupe
                </button>
              </li>
            )}
          </ul>
          {r.can.escalate && (
            <form
              className={fr.cx("fr-mt-3w")}
              onSubmit={(e) => {
                e.preventDefault();
                act("POST", `/requests/${r.id}/escalate`, { to: to || null, note }, "Demande transmise.");
              }}
            >
              <fieldset className={fr.cx("fr-fieldset")}>
                <legend className={fr.cx("fr-fieldset__legend")}>Transmettre la demande</legend>
                <div className={fr.cx("fr-select-group")}>
                  <label className={fr.cx("fr-label")} htmlFor="transmettre-a">
                    À
                  </label>
                  <select className={fr.cx("fr-select")} id="transmettre-a" value={to} onChange={(e) => setTo(e.target.value)}>
                    <option value="">Le support prévu pour « {r.category_label} »</option>
                    {Object.entries(DESK_KINDS).map(([code, label]) => (
                      <option key={code} value={code}>{label}</option>
                    ))}
                  </select>
                </div>
                <div className={fr.cx("fr-input-group")}>
                  <label className={fr.cx("fr-label")} htmlFor="transmettre-note">
                    Ce que vous avez déjà vérifié (note interne)
                  </label>
                  <textarea className={fr.cx("fr-input")} id="transmettre-note" rows={2} value={note} onChange={(e) => setNote(e.target.value)} maxLength={5000} />
                </div>
                <button className={fr.cx("fr-btn", "fr-btn--secondary")} type="submit">
                  Transmettre
                </button>
              </fieldset>
            </form>
          )}
        </>
      )}
    </Show>
  );
}

// A referent's or a desk's queue: which queue, filters, search, a page at a time; several taken at once.
function Queue({ me }: { me: SupportOverview }) {
  const queues = [
    ...(me.referent_of.length ? [{ key: "school", label: `Mon établissement (${me.referent_of.map((s) => s.name).join(", ")})` }] : []),
    ...me.desks.map((d) => ({ key: d.id, label: d.name })),
  ];
  const [desk, setDesk] = useState(queues[0]?.key ?? "school");
  const [status, setStatus] = useState("new,open,waiting");
  const [category, setCategory] = useState("");
  const [assignee, setAssignee] = useState("");
  const [overdue, setOverdue] = useState(false);
  const [q, setQ] = useState("");
  const [items, setItems] = useState<HelpRequestSummary[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [counts, setCounts] = useState<Record<string, number>>({});
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [notice, setNotice] = useState("");
  const [error, setError] = useState("");
  const round = useRef(0);

  function query(before?: string) {
    return new URLSearchParams({
      desk,
      ...(status ? { status } : {}),
      ...(category ? { category } : {}),
      ...(assignee ? { assignee } : {}),
      ...(overdue ? { overdue: "true" } : {}),
      ...(q.trim() ? { q: q.trim() } : {}),
      ...(before ? { before } : {}),
    });
  }

  async function load() {
    const mine = ++round.current;
    try {
      const page = await get<HelpPage>(`${API}/queue?${query()}`);
      if (mine !== round.current) return;
      setItems(page.items);
      setNext(page.next);
      setCounts(page.counts);
      setPicked(new Set());
      setError("");
    } catch (e) {
      setError(explain(e));
    }
  }

  useEffect(() => {
    const timer = setTimeout(load, q ? 200 : 0);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [desk, status, category, assignee, overdue, q]);

  async function more() {
    if (!next) return;
    try {
      const page = await get<HelpPage>(`${API}/queue?${query(next)}`);
      setItems((held) => [...held, ...page.items]);
      setNext(page.next);
    } catch (e) {
      setError(explain(e));
    }
  }

  async function assign(to: "me" | null) {
    setNotice("");
    try {
      const done = await call<{ assigned: number; refused: Record<string, string> }>("POST", `${API}/assign`, { ids: [...picked], assignee: to === "me" ? "me" : null });
      const refused = Object.keys(done.refused).length;
      setNotice(`${done.assigned} demande${done.assigned > 1 ? "s" : ""} ${to ? "attribuée" : "libérée"}${done.assigned > 1 ? "s" : ""}${refused ? `, ${refused} refusée${refused > 1 ? "s" : ""}` : ""}.`);
      load();
    } catch (e) {
      setError(explain(e));
    }
  }

  if (queues.length === 0) return <Failure message="Vous n'êtes référent d'aucun établissement ni agent d'aucun support." />;
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return (
    <>
      <h1>Demandes à traiter</h1>
      {notice && <Notice message={notice} />}
      {error && <Failure message={error} />}
      <form className={fr.cx("fr-grid-row", "fr-grid-row--gutters", "fr-mb-2w")} onSubmit={(e) => e.preventDefault()} aria-label="Filtres">
        {queues.length > 1 && (
          <div className={fr.cx("fr-col-12", "fr-col-md-4", "fr-select-group")}>
            <label className={fr.cx("fr-label")} htmlFor="file">File</label>
            <select className={fr.cx("fr-select")} id="file" value={desk} onChange={(e) => setDesk(e.target.value)}>
              {queues.map((x) => (
                <option key={x.key} value={x.key}>{x.label}</option>
              ))}
            </select>
          </div>
        )}
        <div className={fr.cx("fr-col-12", "fr-col-md-4", "fr-select-group")}>
          <label className={fr.cx("fr-label")} htmlFor="filtre-etat">État</label>
          <select className={fr.cx("fr-select")} id="filtre-etat" value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="new,open,waiting">À traiter</option>
            {me.statuses.map((s) => (
              <option key={s.code} value={s.code}>{s.label}</option>
            ))}
            <option value="">Toutes</option>
          </select>
        </div>
        <div className={fr.cx("fr-col-12", "fr-col-md-4", "fr-select-group")}>
          <label className={fr.cx("fr-label")} htmlFor="filtre-categorie">Catégorie</label>
          <select className={fr.cx("fr-select")} id="filtre-categorie" value={category} onChange={(e) => setCategory(e.target.value)}>
            <option value="">Toutes</option>
            {me.categories.map((c) => (
              <option key={c.code} value={c.code}>{c.label}</option>
            ))}
          </select>
        </div>
        <div className={fr.cx("fr-col-12", "fr-col-md-4", "fr-select-group")}>
          <label className={fr.cx("fr-label")} htmlFor="filtre-suivi">Suivie par</label>
          <select className={fr.cx("fr-select")} id="filtre-suivi" value={assignee} onChange={(e) => setAssignee(e.target.value)}>
            <option value="">N'importe qui</option>
            <option value="me">Moi</option>
            <option value="none">Personne</option>
          </select>
        </div>
        <div className={fr.cx("fr-col-12", "fr-col-md-4", "fr-input-group")}>
          <label className={fr.cx("fr-label")} htmlFor="filtre-mots">Rechercher (objet, nom)</label>
          <input className={fr.cx("fr-input")} id="filtre-mots" type="search" value={q} onChange={(e) => setQ(e.target.value)} />
        </div>
        <div className={fr.cx("fr-col-12", "fr-col-md-4", "fr-checkbox-group")}>
          <input type="checkbox" id="filtre-retard" checked={overdue} onChange={(e) => setOverdue(e.target.checked)} />
          <label className={fr.cx("fr-label")} htmlFor="filtre-retard">En retard seulement</label>
        </div>
      </form>
      <p aria-live="polite">
        {total} demande{total > 1 ? "s" : ""}
        {Object.entries(counts).length > 0 && ` (${Object.entries(counts).map(([k, v]) => `${me.statuses.find((s) => s.code === k)?.label.toLowerCase() ?? k} : ${v}`).join(", ")})`}
      </p>
      {picked.size > 0 && (
        <ul className={fr.cx("fr-btns-group", "fr-btns-group--inline-md", "fr-btns-group--sm")}>
          <li>
            <button className={fr.cx("fr-btn", "fr-btn--sm")} onClick={() => assign("me")}>
              M'attribuer ({picked.size})
            </button>
          </li>
          <li>
            <button className={fr.cx("fr-btn", "fr-btn--sm", "fr-btn--secondary")} onClick={() => assign(null)}>
              Ne plus attribuer
            </button>
          </li>
        </ul>
      )}
      {items.length === 0 ? (
        <p>Aucune demande ne correspond.</p>
      ) : (
        <RequestList
          items={items}
          picked={picked}
          pick={(rid) =>
            setPicked((held) => {
              const changed = new Set(held);
              if (changed.has(rid)) changed.delete(rid);
              else changed.add(rid);
              return changed;
            })
          }
        />
      )}
      {next && (
        <button className={fr.cx("fr-btn", "fr-btn--secondary", "fr-mt-2w")} onClick={more}>
          Demandes plus anciennes
        </button>
      )}
      {me.directs.map((school) => (
        <Referents key={school.uai} school={school} />
      ))}
    </>
  );
}

// The direction names its school's digital referents among its staff (they take the school's requests first).
function Referents({ school }: { school: { uai: string; name: string } }) {
  const [staff, reload] = useLoad(() => get<{ id: string; name: string; named: boolean }[]>(`${API}/schools/${school.uai}/staff`), [school.uai]);
  const [chosen, setChosen] = useState<Set<string> | null>(null);
  const [filter, setFilter] = useState("");
  const { attempt, outcome } = useOutcome();
  const shown = staff.state === "ok" ? staff.value : [];
  const picked = chosen ?? new Set(shown.filter((s) => s.named).map((s) => s.id));

  const save = () =>
    attempt(async () => {
      await call("PUT", `${API}/schools/${school.uai}/referents`, { persons: [...picked] });
      setChosen(null);
      reload();
      return picked.size ? "Les référents numériques sont enregistrés." : "Aucun référent nommé : la direction reçoit les demandes.";
    });

  const folded = (text: string) => text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  return (
    <section aria-labelledby={`referents-${school.uai}`} className={fr.cx("fr-mt-6w")}>
      <h2 id={`referents-${school.uai}`} className={fr.cx("fr-h4")}>Référents numériques — {school.name}</h2>
      <p>Ils reçoivent les demandes d'aide de l'établissement en premier. Sans référent nommé, la direction les reçoit.</p>
      {outcome}
      <Show loaded={staff}>
        {() => (
          <>
            <div className={fr.cx("fr-input-group")}>
              <label className={fr.cx("fr-label")} htmlFor={`personnel-${school.uai}`}>Chercher dans le personnel</label>
              <input className={fr.cx("fr-input")} id={`personnel-${school.uai}`} type="search" value={filter} onChange={(e) => setFilter(e.target.value)} />
            </div>
            <fieldset className={fr.cx("fr-fieldset")}>
              <legend className={fr.cx("fr-fieldset__legend", "fr-text--regular")}>Personnels nommés référents</legend>
              {shown
                .filter((s) => picked.has(s.id) || !filter || folded(s.name).includes(folded(filter)))
                .slice(0, 50)
                .map((s) => (
                  <div key={s.id} className={fr.cx("fr-fieldset__element")}>
                    <div className={fr.cx("fr-checkbox-group")}>
                      <input
                        type="checkbox"
                        id={`referent-${school.uai}-${s.id}`}
                        checked={picked.has(s.id)}
                        onChange={(e) => {
                          const next = new Set(picked);
                          if (e.target.checked) next.add(s.id);
                          else next.delete(s.id);
                          setChosen(next);
                        }}
                      />
                      <label className={fr.cx("fr-label")} htmlFor={`referent-${school.uai}-${s.id}`}>{s.name}</label>
                    </div>
                  </div>
                ))}
            </fieldset>
            <button className={fr.cx("fr-btn", "fr-btn--secondary")} onClick={save}>Enregistrer les référents</button>
          </>
        )}
      </Show>
    </section>
  );
}

function ArticlePage({ me, id }: { me: SupportOverview; id: string }) {
  const [loaded, reload] = useLoad(() => get<Article>(`${API}/articles/${id}`), [id]);
  const [said, setSaid] = useState("");
  const [error, setError] = useState("");
  async function vote(helped: boolean) {
    try {
      await call("POST", `${API}/articles/${id}/vote`, { helped });
      setSaid(helped ? "Merci ! Tant mieux si cet article vous a aidé." : "Merci. Vous pouvez demander de l'aide ci-dessous.");
      reload();
    } catch (e) {
      setError(explain(e));
    }
  }
  return (
    <Show loaded={loaded}>
      {(a) => (
        <article>
          <p>
            <A href="/aide">← Aide</A>
          </p>
          <h1>{a.title}</h1>
          <p>
            <small>
              {a.category_label} · {a.author_name} · mis à jour le {longDate(a.updated_at)}
            </small>
          </p>
          {/* The service renders the Markdown with raw HTML escaped and unsafe links refused. */}
          <div className="maille-body maille-article" dangerouslySetInnerHTML={{ __html: a.html }} />
          {error && <Failure message={error} />}
          <div className={fr.cx("fr-mt-4w")} role="group" aria-labelledby="utile">
            <p id="utile"><strong>Cet article a-t-il répondu à votre question ?</strong></p>
            {said ? (
              <p role="status">{said}</p>
            ) : (
              <ul className={fr.cx("fr-btns-group", "fr-btns-group--inline", "fr-btns-group--sm")}>
                <li><button className={fr.cx("fr-btn", "fr-btn--sm", "fr-btn--secondary")} onClick={() => vote(true)}>Oui</button></li>
                <li><button className={fr.cx("fr-btn", "fr-btn--sm", "fr-btn--secondary")} onClick={() => vote(false)}>Non</button></li>
              </ul>
            )}
          </div>
          <ul className={fr.cx("fr-btns-group", "fr-btns-group--inline-md")}>
            <li>
              <A className={fr.cx("fr-btn")} href="/aide/demandes/nouvelle">Demander de l'aide</A>
            </li>
            {me.writes.includes(a.scope) && (
              <li>
                <A className={fr.cx("fr-btn", "fr-btn--tertiary")} href={`/aide/articles/${a.id}/modifier`}>Modifier l'article</A>
              </li>
            )}
          </ul>
        </article>
      )}
    </Show>
  );
}

function scopeName(me: SupportOverview, scope: string): string {
  if (scope === "academie") return "Tous les établissements (académie)";
  return me.referent_of.find((s) => s.uai === scope)?.name ?? scope;
}

function Editor({ me, id }: { me: SupportOverview; id?: string }) {
  const [title, setTitle] = useState("");
  const [body, setBody] = useState("");
  const [category, setCategory] = useState(me.categories[0]?.code ?? "other");
  const [scope, setScope] = useState(me.writes[0] ?? "");
  const [profiles, setProfiles] = useState<string[]>([]);
  const [tutorial, setTutorial] = useState(false);
  const [error, setError] = useState("");
  const [progress, setProgress] = useState("");
  const [ready, setReady] = useState(!id);

  useEffect(() => {
    if (!id) return;
    get<Article>(`${API}/articles/${id}`).then(
      (a) => {
        setTitle(a.title);
        setBody(a.body);
        setCategory(a.category);
        setScope(a.scope);
        setProfiles(a.profiles);
        setTutorial(a.tutorial);
        setReady(true);
      },
      (e) => setError(explain(e)),
    );
  }, [id]);

  if (me.writes.length === 0) return <Failure message="Seuls le support de l'académie et les référents numériques écrivent des articles." />;

  async function save(event: React.FormEvent) {
    event.preventDefault();
    setError("");
    try {
      const saved = await call<Article>(id ? "PUT" : "POST", `${API}/articles${id ? `/${id}` : ""}`, { title, body, category, scope, profiles, tutorial });
      navigate(`/aide/articles/${saved.id}`);
    } catch (e) {
      setError(explain(e));
    }
  }

  async function image(file: File | undefined) {
    if (!file) return;
    try {
      const made = await upload<{ id: string; markdown: string }>(`${API}/images`, file, (share) => setProgress(`Envoi de l'image : ${Math.round(share * 100)} %`));
      setBody((held) => `${held}\n\n${made.markdown}\n`);
      setProgress("Image ajoutée à la fin de l'article : décrivez-la entre les crochets.");
    } catch (e) {
      setError(explain(e));
      setProgress("");
    }
  }

  if (!ready) return <p aria-live="polite">Chargement…</p>;
  return (
    <>
      <h1>{id ? "Modifier l'article" : "Écrire un article"}</h1>
      {error && <Failure message={error} />}
      <form onSubmit={save}>
        <div className={fr.cx("fr-input-group")}>
          <label className={fr.cx("fr-label")} htmlFor="article-titre">Titre</label>
          <input className={fr.cx("fr-input")} id="article-titre" value={title} onChange={(e) => setTitle(e.target.value)} minLength={3} maxLength={200} required />
        </div>
        <div className={fr.cx("fr-select-group")}>
          <label className={fr.cx("fr-label")} htmlFor="article-categorie">Catégorie</label>
          <select className={fr.cx("fr-select")} id="article-categorie" value={category} onChange={(e) => setCategory(e.target.value)}>
            {me.categories.map((c) => (
              <option key={c.code} value={c.code}>{c.label}</option>
            ))}
          </select>
        </div>
        <div className={fr.cx("fr-select-group")}>
          <label className={fr.cx("fr-label")} htmlFor="article-pour">Pour</label>
          <select className={fr.cx("fr-select")} id="article-pour" value={scope} onChange={(e) => setScope(e.target.value)}>
            {me.writes.map((s) => (
              <option key={s} value={s}>{scopeName(me, s)}</option>
            ))}
          </select>
        </div>
        <fieldset className={fr.cx("fr-fieldset")}>
          <legend className={fr.cx("fr-fieldset__legend", "fr-text--regular")}>Qui le lit (aucun coché : tout le monde)</legend>
          {ARTICLE_PROFILES.map((code) => (
            <div key={code} className={fr.cx("fr-fieldset__element", "fr-fieldset__element--inline")}>
              <div className={fr.cx("fr-checkbox-group")}>
                <input type="checkbox" id={`pour-${code}`} checked={profiles.includes(code)} onChange={(e) => setProfiles((held) => (e.target.checked ? [...held, code] : held.filter((p) => p !== code)))} />
                <label className={fr.cx("fr-label")} htmlFor={`pour-${code}`}>{profileName(code)}</label>
              </div>
            </div>
          ))}
        </fieldset>
        {scope === "academie" && (
          <div className={fr.cx("fr-checkbox-group", "fr-mb-2w")}>
            <input type="checkbox" id="article-tutoriel" checked={tutorial} onChange={(e) => setTutorial(e.target.checked)} />
            <label className={fr.cx("fr-label")} htmlFor="article-tutoriel">Tutoriel de l'ENT (montré en premier)</label>
          </div>
        )}
        <div className={fr.cx("fr-input-group")}>
          <label className={fr.cx("fr-label")} htmlFor="article-texte">
            Texte
            <span className={fr.cx("fr-hint-text")}>Markdown : **gras**, listes « 1. », titres « ## », liens [texte](adresse).</span>
          </label>
          <textarea className={fr.cx("fr-input")} id="article-texte" rows={14} value={body} onChange={(e) => setBody(e.target.value)} maxLength={50000} required />
        </div>
        <div className={fr.cx("fr-upload-group", "fr-mb-3w")}>
          <label className={fr.cx("fr-label")} htmlFor="article-image">
            Ajouter une image
            <span className={fr.cx("fr-hint-text")}>PNG, JPEG, GIF ou WebP, 5 Mo au plus.</span>
          </label>
          <input className={fr.cx("fr-upload")} type="file" accept="image/png,image/jpeg,image/gif,image/webp" id="article-image" onChange={(e) => image(e.target.files?.[0])} />
        </div>
        {progress && <p aria-live="polite">{progress}</p>}
        <button className={fr.cx("fr-btn")} type="submit">Enregistrer</button>
      </form>
    </>
  );
}
