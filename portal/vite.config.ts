import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The portal is built into dist/ (served by the gateway at /): every asset's name carries its content's hash,
// so the gateway caches them for a year; index.html, which names them, is never cached.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    assetsInlineLimit: 0, // fonts and images as files: nothing inlined that the CSP would have to allow as data:
    sourcemap: false,
    target: "es2020",
    // 400 kB for what everyone loads; the observatory's chunk (Apache ECharts, 170 kB gzipped) loads only for its readers.
    chunkSizeWarningLimit: 520,
  },
  server: {
    // `npm run dev` beside `make run`: the API, sign-in and sign-out through the gateway.
    proxy: Object.fromEntries(["/api", "/login", "/logout", "/auth"].map((p) => [p, "http://localhost:8000"])),
  },
});
