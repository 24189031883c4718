import { createRoot } from "react-dom/client";
import { startReactDsfr } from "@codegouvfr/react-dsfr/spa";
import "@codegouvfr/react-dsfr/dsfr/dsfr.min.css";
import "./icons.css";
import "./portal.css";
import { App } from "./App";

startReactDsfr({ defaultColorScheme: "light" });
createRoot(document.getElementById("root")!).render(<App />);
