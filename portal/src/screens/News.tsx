import { useState } from "react";
import { fr } from "@codegouvfr/react-dsfr";
import { call, explain, get, upload } from "../api";
import { navigate } from "../router";
import type { NewsBoard, NewsItem } from "../types";
import { className, longDate, profileName, size } from "../words";
import { A, Failure, Show, useLoad, useOutcome } from "./common";

// The profiles a publisher may narrow an audience to, in words.
const AUDIENCE_PROFILES = ["National_ELV", "National_TUT", "National_ENS", "National_DIR", "National_EVS", "National_ETA"];
const PROFILE_PLURALS: Record<string, string> = {
  National_ELV: "élèves",
  National_TUT: "parents",
  National_ENS: "enseignants",
  National_DOC: "professeurs documentalistes",
  National_DIR: "personnels de direction",
  National_EVS: "personnels de vie scolaire",
  National_ETA: "personnels de l'établissement",
};

function boardName(b: { scope: string; name: string }): string {
  if (b.scope === "group") return `Classe ou groupe ${className(b.name)}`;
  if (b.scope === "circonscription") return b.name;
  return b.name;
}

export function News({ path }: { path: string }) {
  const rest = path.split("?")[0].split("/").slice(2);
  if (rest[0] === "ecrire") return <Write />;
  if (rest[0]) return <Item id={rest[0]} />;
  return <Boards />;
}

// The news pages a person reads: one per school, class or group, circonscription.
function Boards() {
  const [boards] = useLoad(() => get<NewsBoard[]>("/api/timeline/v1/news/boards"), []);
  const [targets] = useLoad(() => get<unknown[]>("/api/timeline/v1/news/targets"), []);
  const chosen = new URLSearchParams(location.search).get("page");
  return (
    <>
      <h1>Actualités</h1>
      {targets.state === "ok" && targets.value.length > 0 && (
        <p>
          <A className={fr.cx("fr-btn", "fr-icon-edit-line", "fr-btn--icon-left")} href="/actualites/ecrire">
            Publier une actualité
          </A>
        </p>
      )}
      <Show loaded={boards}>
        {(all) =>
          all.length === 0 ? (
            <p>Aucune page d'actualités pour vous pour l'instant.</p>
          ) : (
            <>
              <nav aria-label="Pages d'actualités" className={fr.cx("fr-mb-2w")}>
                <ul className={fr.cx("fr-tags-group")}>
                  {all.map((b) => (
                    <li key={b.key}>
                      <A className={fr.cx("fr-tag")} href={`/actualites?${new URLSearchParams({ page: b.key })}`} aria-current={(chosen ?? all[0].key) === b.key ? "page" : undefined}>
                        {boardName(b)}
                      </A>
                    </li>
                  ))}
                </ul>
              </nav>
              <Board board={all.find((b) => b.key === chosen) ?? all[0]} />
            </>
          )
        }
      </Show>
    </>
  );
}

function Board({ board }: { board: NewsBoard }) {
  const [items, setItems] = useState<NewsItem[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState("");
  const [first] = useLoad(async () => {
    const page = await get<{ items: NewsItem[]; next: string | null }>(`/api/timeline/v1/news?${new URLSearchParams({ board: board.key })}`);
    setItems(page.items);
    setNext(page.next);
    return page;
  }, [board.key]);

  async function more() {
    if (!next) return;
    try {
      const page = await get<{ items: NewsItem[]; next: string | null }>(`/api/timeline/v1/news?${new URLSearchParams({ board: board.key, before: next })}`);
      setItems((held) => [...held, ...page.items]);
      setNext(page.next);
    } catch (e) {
      setError(explain(e));
    }
  }

  return (
    <section aria-labelledby="page-actualites">
      <h2 id="page-actualites" className={fr.cx("fr-h4")}>{boardName(board)}</h2>
      {error && <Failure message={error} />}
      <Show loaded={first}>
        {() =>
          items.length === 0 ? (
            <p>Aucune actualité sur cette page.</p>
          ) : (
            <ul className="maille-list">
              {items.map((n) => (
                <li key={n.id} className={n.read ? "" : "maille-unread"}>
                  <A href={`/actualites/${n.id}`}>{n.read ? n.title : <strong>{n.title}</strong>}</A>
                  {!n.read && <span className="fr-sr-only"> (non lue)</span>}
                  <br />
                  <small>
                    {n.author_name}
                    {n.published_at ? `, ${longDate(n.published_at)}` : ""}
                  </small>
                  <p className={fr.cx("fr-mb-0")}>{n.body.length > 200 ? n.body.slice(0, 199) + "…" : n.body}</p>
                </li>
              ))}
            </ul>
          )
        }
      </Show>
      {next && (
        <button className={fr.cx("fr-btn", "fr-btn--secondary", "fr-mt-2w")} onClick={more}>
          Actualités plus anciennes
        </button>
      )}
    </section>
  );
}

// One item: its words, images and documents, comments; for its publisher, who read it and the comments waiting.
function Item({ id }: { id: string }) {
  const [loaded, reload] = useLoad(() => get<NewsItem>(`/api/timeline/v1/news/${id}`), [id]);
  const [comment, setComment] = useState("");
  const { attempt, outcome } = useOutcome();
  const act = (method: string, path: string, body: unknown, done: string) =>
    attempt(async () => {
      await call(method, path, body);
      reload();
      return done;
    });

  return (
    <Show loaded={loaded}>
      {(n) => (
        <article>
          <p>
            <A href="/actualites">Toutes les actualités</A>
          </p>
          <h1>{n.title}</h1>
          <p>
            <small>
              {n.author_name}
              {n.published_at ? `, ${longDate(n.published_at)}` : n.state === "scheduled" && n.publish_at ? `, publication prévue ${longDate(n.publish_at)}` : ""}
            </small>
          </p>
          {outcome}
          {n.body.split(/\n\s*\n/).map((paragraph, i) => (
            <p key={i}>{paragraph}</p>
          ))}
          {n.files.filter((f) => f.type.startsWith("image/")).map((f) => (
            <img key={f.id} src={`/api/timeline/v1/news/${n.id}/files/${f.id}`} alt={f.name} className="maille-news-image" />
          ))}
          {n.files.some((f) => !f.type.startsWith("image/")) && (
            <ul>
              {n.files.filter((f) => !f.type.startsWith("image/")).map((f) => (
                <li key={f.id}>
                  <a className={fr.cx("fr-link", "fr-icon-download-line", "fr-link--icon-left")} href={`/api/timeline/v1/news/${n.id}/files/${f.id}`} download={f.name}>
                    {f.name} ({size(f.size)})
                  </a>
                </li>
              ))}
            </ul>
          )}
          {n.stats && n.stats.length > 0 && (
            <section aria-labelledby="lectures">
              <h2 id="lectures" className={fr.cx("fr-h5")}>Qui l'a lue</h2>
              <ul>
                {n.stats.map((s) => (
                  <li key={s.profile}>
                    Lue par {s.reached ? Math.round((100 * s.read) / s.reached) : 0} % des {PROFILE_PLURALS[s.profile] ?? profileName(s.profile).toLowerCase()} ({s.read} sur {s.reached})
                  </li>
                ))}
              </ul>
            </section>
          )}
          {n.stats && n.state === "published" && (
            <button className={fr.cx("fr-btn", "fr-btn--tertiary", "fr-mb-2w")} onClick={() => act("DELETE", `/api/timeline/v1/news/${n.id}`, undefined, "L'actualité est retirée.")}>
              Retirer cette actualité
            </button>
          )}
          {n.comments && (
            <section aria-labelledby="commentaires">
              <h2 id="commentaires" className={fr.cx("fr-h5")}>Commentaires</h2>
              {(n.comments_list ?? []).length === 0 && <p>Aucun commentaire pour l'instant.</p>}
              <ul className="maille-list">
                {(n.comments_list ?? []).map((c) => (
                  <li key={c.id}>
                    <strong>{c.author_name}</strong> — {c.text}
                    {!c.approved && (
                      <>
                        {" "}
                        <span className={fr.cx("fr-badge", "fr-badge--sm", "fr-badge--warning")}>en attente</span>{" "}
                        <button className={fr.cx("fr-btn", "fr-btn--sm", "fr-btn--secondary")} onClick={() => act("PUT", `/api/timeline/v1/news/${n.id}/comments/${c.id}`, { approved: true }, "Commentaire publié.")}>
                          Publier
                        </button>{" "}
                        <button className={fr.cx("fr-btn", "fr-btn--sm", "fr-btn--tertiary")} onClick={() => act("PUT", `/api/timeline/v1/news/${n.id}/comments/${c.id}`, { approved: false }, "Commentaire refusé.")}>
                          Refuser
                        </button>
                      </>
                    )}
                  </li>
                ))}
              </ul>
              {n.state === "published" && (
                <form
                  onSubmit={(e) => {
                    e.preventDefault();
                    act("POST", `/api/timeline/v1/news/${n.id}/comments`, { text: comment }, "Merci : votre commentaire sera visible une fois accepté par l'auteur.").then(() => setComment(""));
                  }}
                >
                  <div className={fr.cx("fr-input-group")}>
                    <label className={fr.cx("fr-label")} htmlFor="commentaire">Votre commentaire</label>
                    <textarea id="commentaire" className={fr.cx("fr-input")} maxLength={2000} required value={comment} onChange={(e) => setComment(e.target.value)} />
                  </div>
                  <button className={fr.cx("fr-btn")} type="submit">Commenter</button>
                </form>
              )}
            </section>
          )}
        </article>
      )}
    </Show>
  );
}

interface Target {
  scope: "school" | "group" | "circonscription";
  id: string;
  name: string;
}

// The publishing form: where (what the directory lets the person publish to), to whom, what, when.
function Write() {
  const [targets] = useLoad(() => get<Target[]>("/api/timeline/v1/news/targets"), []);
  const [where, setWhere] = useState("");
  const [profiles, setProfiles] = useState<string[]>([]);
  const [title, setTitle] = useState("");
  const [body, setBody] = useState("");
  const [comments, setComments] = useState(false);
  const [when, setWhen] = useState("");
  const [until, setUntil] = useState("");
  const [files, setFiles] = useState<File[]>([]);
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function publish(event: React.FormEvent) {
    event.preventDefault();
    setError("");
    if (!where) return setError("Choisissez où publier.");
    const [scope, ...rest] = where.split(":");
    setBusy(true);
    try {
      const created = await call<NewsItem>("POST", "/api/timeline/v1/news", {
        audience: { scope, id: rest.join(":"), profiles },
        title,
        body,
        comments,
        expires_at: until ? new Date(until).toISOString() : null,
      });
      for (const file of files) {
        setProgress(0);
        await upload(`/api/timeline/v1/news/${created.id}/files?${new URLSearchParams({ name: file.name })}`, file, setProgress);
      }
      setProgress(null);
      await call("POST", `/api/timeline/v1/news/${created.id}/publish`, { at: when ? new Date(when).toISOString() : null });
      navigate(`/actualites/${created.id}`);
    } catch (e) {
      setError(explain(e));
    } finally {
      setBusy(false);
      setProgress(null);
    }
  }

  return (
    <>
      <h1>Publier une actualité</h1>
      <Show loaded={targets}>
        {(all) =>
          all.length === 0 ? (
            <p>L'annuaire ne vous permet pas de publier d'actualités (la direction publie pour l'établissement, les enseignants pour leurs classes).</p>
          ) : (
            <form onSubmit={publish}>
              {error && <Failure message={error} />}
              <div className={fr.cx("fr-select-group")}>
                <label className={fr.cx("fr-label")} htmlFor="ou">Où publier</label>
                <select id="ou" className={fr.cx("fr-select")} required value={where} onChange={(e) => setWhere(e.target.value)}>
                  <option value="" disabled>Choisir</option>
                  {all.map((t) => (
                    <option key={`${t.scope}:${t.id}`} value={`${t.scope}:${t.id}`}>
                      {boardName(t)}
                    </option>
                  ))}
                </select>
              </div>
              <fieldset className={fr.cx("fr-fieldset")}>
                <legend className={fr.cx("fr-fieldset__legend")}>Pour qui (rien de coché : tout le monde)</legend>
                {AUDIENCE_PROFILES.map((code) => (
                  <div key={code} className={fr.cx("fr-fieldset__element")}>
                    <div className={fr.cx("fr-checkbox-group")}>
                      <input
                        type="checkbox"
                        id={`pour-${code}`}
                        checked={profiles.includes(code)}
                        onChange={(e) => setProfiles((p) => (e.target.checked ? [...p, code] : p.filter((x) => x !== code)))}
                      />
                      <label className={fr.cx("fr-label")} htmlFor={`pour-${code}`}>
                        Les {PROFILE_PLURALS[code]}
                      </label>
                    </div>
                  </div>
                ))}
              </fieldset>
              <div className={fr.cx("fr-input-group")}>
                <label className={fr.cx("fr-label")} htmlFor="titre">Titre</label>
                <input id="titre" className={fr.cx("fr-input")} required maxLength={200} value={title} onChange={(e) => setTitle(e.target.value)} />
              </div>
              <div className={fr.cx("fr-input-group")}>
                <label className={fr.cx("fr-label")} htmlFor="texte">
                  Texte<span className={fr.cx("fr-hint-text")}>Une ligne vide sépare deux paragraphes.</span>
                </label>
                <textarea id="texte" className={fr.cx("fr-input")} rows={8} maxLength={20000} value={body} onChange={(e) => setBody(e.target.value)} />
              </div>
              <div className={fr.cx("fr-upload-group", "fr-mb-2w")}>
                <label className={fr.cx("fr-label")} htmlFor="fichiers">
                  Images et documents<span className={fr.cx("fr-hint-text")}>10 fichiers au plus, 10 Mo chacun.</span>
                </label>
                <input id="fichiers" className={fr.cx("fr-upload")} type="file" multiple onChange={(e) => setFiles(Array.from(e.target.files ?? []))} />
              </div>
              {progress !== null && <progress max={1} value={progress} aria-label="Envoi des fichiers" />}
              <div className={fr.cx("fr-checkbox-group", "fr-mb-2w")}>
                <input type="checkbox" id="commentaires" checked={comments} onChange={(e) => setComments(e.target.checked)} />
                <label className={fr.cx("fr-label")} htmlFor="commentaires">
                  Autoriser les commentaires (vous les acceptez avant qu'ils paraissent)
                </label>
              </div>
              <div className={fr.cx("fr-input-group")}>
                <label className={fr.cx("fr-label")} htmlFor="quand">
                  Publier le<span className={fr.cx("fr-hint-text")}>Laisser vide pour publier tout de suite.</span>
                </label>
                <input id="quand" className={fr.cx("fr-input")} type="datetime-local" value={when} onChange={(e) => setWhen(e.target.value)} />
              </div>
              <div className={fr.cx("fr-input-group")}>
                <label className={fr.cx("fr-label")} htmlFor="jusqua">
                  Retirer le<span className={fr.cx("fr-hint-text")}>Laisser vide pour la garder en ligne.</span>
                </label>
                <input id="jusqua" className={fr.cx("fr-input")} type="datetime-local" value={until} onChange={(e) => setUntil(e.target.value)} />
              </div>
              <button className={fr.cx("fr-btn")} type="submit" disabled={busy}>
                {when ? "Programmer la publication" : "Publier"}
              </button>
            </form>
          )
        }
      </Show>
    </>
  );
}
