import { useCallback, useEffect, useState } from "react";
import { fr } from "@codegouvfr/react-dsfr";
import { explain } from "../api";
import { onLink } from "../router";

// A value read from the API: loading, read, or failed with what to tell the person.
export type Loaded<T> = { state: "loading" } | { state: "ok"; value: T } | { state: "failed"; message: string };

export function useLoad<T>(read: () => Promise<T>, deps: unknown[]): [Loaded<T>, () => void] {
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: "loading" });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    setLoaded({ state: "loading" });
    read().then(
      (value) => live && setLoaded({ state: "ok", value }),
      (error) => live && setLoaded({ state: "failed", message: explain(error) }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, round]);
  return [loaded, useCallback(() => setRound((n) => n + 1), [])];
}

export function Show<T>({ loaded, children }: { loaded: Loaded<T>; children: (value: T) => React.ReactNode }) {
  if (loaded.state === "loading") return <p aria-live="polite">Chargement…</p>;
  if (loaded.state === "failed") return <Failure message={loaded.message} />;
  return <>{children(loaded.value)}</>;
}

export function Failure({ message }: { message: string }) {
  return (
    <div className={fr.cx("fr-alert", "fr-alert--error", "fr-alert--sm", "fr-mb-2w")} role="alert">
      <p>{message}</p>
    </div>
  );
}

export function Notice({ message }: { message: string }) {
  return (
    <div className={fr.cx("fr-alert", "fr-alert--success", "fr-alert--sm", "fr-mb-2w")} role="status">
      <p>{message}</p>
    </div>
  );
}

// What a screen's last action came to: `attempt(work)` runs it — `work` gives what to tell the person when it worked —
// and `outcome` shows that notice, or the error in the person's words when it failed (`attempt` then gives false).
export function useOutcome(): { attempt: (work: () => Promise<string>) => Promise<boolean>; outcome: React.ReactNode } {
  const [said, setSaid] = useState<{ notice?: string; error?: string }>({});
  const attempt = useCallback(async (work: () => Promise<string>) => {
    setSaid({});
    try {
      setSaid({ notice: await work() });
      return true;
    } catch (e) {
      setSaid({ error: explain(e) });
      return false;
    }
  }, []);
  const outcome = (
    <>
      {said.notice && <Notice message={said.notice} />}
      {said.error && <Failure message={said.error} />}
    </>
  );
  return { attempt, outcome };
}

// Things read from the API shown as a DSFR table — a row each, under `columns` — or `empty` when there are none.
export function Listing<T>(props: { items: T[]; empty: string; caption: string; columns: string[]; row: (item: T) => React.ReactNode }) {
  if (props.items.length === 0) return <p>{props.empty}</p>;
  return (
    <div className={fr.cx("fr-table")}>
      <table>
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map((column) => (
              <th key={column} scope="col">{column}</th>
            ))}
          </tr>
        </thead>
        <tbody>{props.items.map(props.row)}</tbody>
      </table>
    </div>
  );
}

export function A(props: React.AnchorHTMLAttributes<HTMLAnchorElement>) {
  return <a {...props} onClick={onLink} />;
}
