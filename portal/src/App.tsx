import { Component, lazy, Suspense, useEffect, useRef, useState, type ReactNode } from "react";
import { Header } from "@codegouvfr/react-dsfr/Header";
import { fr } from "@codegouvfr/react-dsfr";
import { SkipLinks } from "@codegouvfr/react-dsfr/SkipLinks";
import { get, signIn } from "./api";
import { navigate, usePath } from "./router";
import { isParent, isStaff, readSession, SessionContext, type Session } from "./session";
import type { Me } from "./types";
import { Dashboard } from "./screens/Dashboard";
import { Mail } from "./screens/Mail";
import { Mediacentre } from "./screens/Mediacentre";
import { Library } from "./screens/Library";
import { Account } from "./screens/Account";
import { useUnread } from "./live";

// The screens most people open less often than their mail, the médiacentre or the CDI load when first opened: the first
// screen downloads less. The observatory's charts (Apache ECharts) load only for those who open it.
const Classes = lazy(() => import("./screens/Classes").then((m) => ({ default: m.Classes })));
const Children = lazy(() => import("./screens/Children").then((m) => ({ default: m.Children })));
const Admin = lazy(() => import("./screens/Admin").then((m) => ({ default: m.Admin })));
const Notifications = lazy(() => import("./screens/Notifications").then((m) => ({ default: m.Notifications })));
const Unsubscribe = lazy(() => import("./screens/Notifications").then((m) => ({ default: m.Unsubscribe })));
const News = lazy(() => import("./screens/News").then((m) => ({ default: m.News })));
const Support = lazy(() => import("./screens/Support").then((m) => ({ default: m.Support })));
const Observatory = lazy(() => import("./screens/Observatory").then((m) => ({ default: m.Observatory })));

function csrf(): string {
  const found = document.cookie.split("; ").find((c) => c.startsWith("maille_csrf="));
  return found ? decodeURIComponent(found.slice("maille_csrf=".length)) : "";
}

const SECTIONS: { path: string; title: string; show?: (me: Me) => boolean }[] = [
  { path: "/", title: "Accueil" },
  { path: "/actualites", title: "Actualités" },
  { path: "/messagerie", title: "Messagerie" },
  { path: "/mediacentre", title: "Médiacentre" },
  { path: "/cdi", title: "CDI" },
  { path: "/enfants", title: "Mes enfants", show: isParent },
  { path: "/classes", title: "Mes classes", show: isStaff },
  { path: "/administration", title: "Administration", show: (me) => me.operator || me.administers.length > 0 },
  { path: "/observatoire", title: "Observatoire", show: (me) => me.observes === true },
];

// What a section is called in the uses the observatory counts (the gateway's list of the portal's screens).
function service(here: string): string {
  return here === "/" ? "accueil" : here.slice(1);
}

// The portal tells the gateway which screen a person opened (a use the observatory counts; nothing else is kept).
// Without the session's CSRF token the gateway would refuse it: nothing is sent.
function tellOpened(here: string): void {
  if (!csrf()) return;
  fetch("/api/uses", {
    method: "POST",
    credentials: "same-origin",
    keepalive: true,
    headers: { "content-type": "application/json", "x-csrf-token": csrf() },
    body: JSON.stringify({ service: service(here) }),
    signal: AbortSignal.timeout(10_000),
  }).catch(() => undefined);
}

function section(path: string): string {
  const first = "/" + (path.split("?")[0].split("/")[1] ?? "");
  if (first === "/compte" || first === "/notifications" || first === "/aide") return first;
  return SECTIONS.some((s) => s.path === first) ? first : "/";
}

export function App() {
  const [session, setSession] = useState<Session>(null);
  const path = usePath();
  useEffect(() => {
    readSession().then(async (found) => {
      // Staff may have dashboards of the observatory (a principal's school, a collectivité's, the académie's).
      if (found !== null && typeof found === "object" && (isStaff(found) || found.operator)) {
        try {
          found = { ...found, observes: (await get<unknown[]>("/api/observatory/v1/scopes")).length > 0 };
        } catch {
          /* the observatory away: its entry is not shown */
        }
      }
      setSession(found);
    });
  }, []);
  const told = useRef<string | null>(null);
  useEffect(() => {
    if (session === null || typeof session !== "object") return;
    const here = section(path);
    if (told.current !== here) {
      told.current = here;
      tellOpened(here);
    }
  }, [path, session]);
  useEffect(() => {
    const current = SECTIONS.find((s) => s.path === section(path));
    const named = section(path) === "/aide" ? "Aide — " : current && current.path !== "/" ? current.title + " — " : "";
    document.title = `${named}Maille`;
    document.getElementById("contenu")?.focus({ preventScroll: true });
  }, [path]);

  // An e-mail's unsubscribe link: no sign-in needed (its token says who).
  if (path.startsWith("/desabonnement")) return <Frame><Suspense fallback={<Loading />}><Unsubscribe /></Suspense></Frame>;
  if (session === null) return <Frame><p aria-live="polite">Chargement…</p></Frame>;
  if (session === "signed-out") return <SignedOut />;
  if (session === "not-linked") return <NotLinked />;
  if (session === "unavailable") return <Unavailable />;
  const me = session;
  const here = section(path);
  const navigation = SECTIONS.filter((s) => !s.show || s.show(me)).map((s) => ({
    text: s.title,
    isActive: here === s.path,
    linkProps: { href: s.path, onClick: follow(s.path) },
  }));
  return (
    <SessionContext.Provider value={me}>
      <Frame
        schools={me.schools.map((s) => s.name).join(" · ")}
        navigation={navigation}
        quickAccessItems={[
          { iconId: "fr-icon-question-line", text: "Aide", linkProps: { href: "/aide", onClick: follow("/aide"), id: "aide" } },
          { iconId: "fr-icon-notification-3-line", text: <Bell />, linkProps: { href: "/notifications", onClick: follow("/notifications"), id: "cloche" } },
          { iconId: "fr-icon-account-circle-line", text: `${me.first_name} ${me.last_name}`, linkProps: { href: "/compte", onClick: follow("/compte") } },
          { iconId: "fr-icon-logout-box-r-line", text: "Se déconnecter", buttonProps: { type: "submit", form: "deconnexion" } },
        ]}
      >
        <form id="deconnexion" method="post" action="/logout" hidden>
          <input type="hidden" name="csrf" value={csrf()} />
        </form>
        <Boundary key={path}>
          <Suspense fallback={<Loading />}>
            <Screen path={path} />
          </Suspense>
        </Boundary>
      </Frame>
    </SessionContext.Provider>
  );
}

function follow(to: string) {
  return (event: React.MouseEvent<HTMLAnchorElement>) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(to);
  };
}

function Screen({ path }: { path: string }) {
  switch (section(path)) {
    case "/messagerie":
      return <Mail path={path} />;
    case "/mediacentre":
      return <Mediacentre />;
    case "/cdi":
      return <Library />;
    case "/compte":
      return <Account />;
    case "/enfants":
      return <Children path={path} />;
    case "/classes":
      return <Classes />;
    case "/administration":
      return <Admin />;
    case "/notifications":
      return <Notifications path={path} />;
    case "/actualites":
      return <News path={path} />;
    case "/aide":
      return <Support path={path} />;
    case "/observatoire":
      return <Observatory path={path} />;
    default:
      return <Dashboard />;
  }
}

function Loading() {
  return <p aria-live="polite">Chargement…</p>;
}

// The bell: the unread count, kept live; a new notification is also said to screen readers.
function Bell() {
  const [unread, heard] = useUnread();
  return (
    <>
      Notifications
      {unread > 0 && (
        <span className={fr.cx("fr-badge", "fr-badge--sm", "fr-badge--new", "fr-ml-1w")} data-testid="non-lues">
          {unread > 99 ? "99+" : unread}
          <span className="fr-sr-only"> non lue{unread > 1 ? "s" : ""}</span>
        </span>
      )}
      <span className="fr-sr-only" aria-live="polite">
        {heard ? `Nouvelle notification : ${heard}` : ""}
      </span>
    </>
  );
}

function Frame(props: { children: ReactNode; schools?: string; navigation?: React.ComponentProps<typeof Header>["navigation"]; quickAccessItems?: React.ComponentProps<typeof Header>["quickAccessItems"] }) {
  return (
    <>
      <SkipLinks links={[{ label: "Contenu", anchor: "#contenu" }]} />
      <Header
        brandTop={<>République<br />Française</>}
        homeLinkProps={{ href: "/", title: "Accueil — Maille", onClick: follow("/") }}
        serviceTitle="Maille"
        serviceTagline={props.schools ?? "L'espace numérique de travail de votre établissement"}
        navigation={props.navigation}
        quickAccessItems={props.quickAccessItems}
      />
      <main id="contenu" tabIndex={-1} className={`${fr.cx("fr-container", "fr-py-4w")} maille-main`}>
        {props.children}
      </main>
      <footer className={fr.cx("fr-footer")} role="contentinfo">
        <div className={fr.cx("fr-container")}>
          <p className={fr.cx("fr-footer__content-desc", "fr-py-2w")}>
            Maille — espace numérique de travail. Accessibilité : partiellement conforme.
          </p>
        </div>
      </footer>
    </>
  );
}

function SignedOut() {
  return (
    <Frame>
      <h1>Bienvenue dans votre espace numérique de travail</h1>
      <p>Messagerie, médiacentre, CDI : connectez-vous avec votre compte ÉduConnect (élèves et parents) ou votre compte académique (personnels).</p>
      <button className={fr.cx("fr-btn")} onClick={() => signIn()}>Se connecter</button>
    </Frame>
  );
}

function NotLinked() {
  return (
    <Frame>
      <h1>Votre compte n'est pas encore relié à l'annuaire</h1>
      <p>
        Vous êtes bien connecté, mais votre établissement ne vous a pas encore inscrit dans l'annuaire de l'ENT.
        Demandez au secrétariat de votre établissement de vérifier votre inscription (nom, prénom et date de naissance),
        puis reconnectez-vous demain : l'annuaire est mis à jour chaque nuit.
      </p>
      <form method="post" action="/logout">
        <input type="hidden" name="csrf" value={csrf()} />
        <button className={fr.cx("fr-btn", "fr-btn--secondary")} type="submit">Se déconnecter</button>
      </form>
    </Frame>
  );
}

function Unavailable() {
  return (
    <Frame>
      <h1>Connexion momentanément impossible</h1>
      <p>Un service de l'ENT ne répond pas pour le moment. Rien n'est perdu : réessayez dans quelques instants.</p>
      <button className={fr.cx("fr-btn")} onClick={() => location.reload()}>Réessayer</button>
    </Frame>
  );
}

// A screen that fails says so in French, and the rest of the portal (the header, the other screens) goes on.
class Boundary extends Component<{ children: ReactNode }, { failed: boolean }> {
  state = { failed: false };

  static getDerivedStateFromError() {
    return { failed: true };
  }

  render() {
    if (!this.state.failed) return this.props.children;
    return (
      <div className={fr.cx("fr-alert", "fr-alert--error")} role="alert">
        <h1 className={fr.cx("fr-alert__title")}>Cette page n'a pas pu s'afficher</h1>
        <p>Rechargez la page ; si cela recommence, signalez-le à votre établissement.</p>
      </div>
    );
  }
}
