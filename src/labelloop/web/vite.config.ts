import { copyFileSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { defineConfig, type Plugin } from "vite";

// Swagger UI for /api/docs, shipped with the build so the docs work offline.
function swaggerAssets(): Plugin {
  return {
    name: "labelloop-swagger-assets",
    closeBundle() {
      const out = resolve(import.meta.dirname, "dist/swagger");
      mkdirSync(out, { recursive: true });
      for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"]) {
        copyFileSync(resolve(import.meta.dirname, "node_modules/swagger-ui-dist", file), resolve(out, file));
      }
    },
  };
}

export default defineConfig({
  base: "/",
  plugins: [swaggerAssets()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 800 },
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
});
