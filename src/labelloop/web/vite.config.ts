import { copyFileSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { defineConfig, type Plugin } from "vite";

// Swagger UI for /api/docs, shipped with the build so the docs work offline.
function swaggerAssets(): Plugin {
  let outDir = resolve(import.meta.dirname, "dist");
  return {
    name: "labelloop-swagger-assets",
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir); // `--outDir` too (make web-check builds elsewhere)
    },
    closeBundle() {
      const out = resolve(outDir, "swagger");
      mkdirSync(out, { recursive: true });
      for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"]) {
        copyFileSync(resolve(import.meta.dirname, "node_modules/swagger-ui-dist", file), resolve(out, file));
      }
    },
  };
}

// Annotorious for OpenSeadragon bundles its own PixiJS, whose ShaderSystem uses `new Function`, which our
// Content-Security-Policy forbids: hand that class to src/pixi-no-eval.ts as the module loads (before any
// renderer exists). Fails the build, rather than the page, if a new version no longer matches.
function pixiWithoutEval(): Plugin {
  const bundle = "/@annotorious/openseadragon/dist/annotorious-openseadragon.es.js";
  const patch = resolve(import.meta.dirname, "src/pixi-no-eval.ts");
  return {
    name: "labelloop-pixi-without-eval",
    transform(code, id) {
      if (!id.replaceAll("\\", "/").endsWith(bundle)) return null;
      const found = /class (\w+) \{[^{}]*constructor\(\w+\) \{[^{}]*this\.systemCheck\(\)/.exec(code);
      if (!found) this.error(`PixiJS's ShaderSystem not found in ${id}: update pixiWithoutEval in vite.config.ts`);
      return `${code}\nimport { patchShaderSystem as __labelloopPatch } from ${JSON.stringify(patch)};\n__labelloopPatch(${found[1]});\n`;
    },
  };
}

export default defineConfig({
  base: "/",
  plugins: [swaggerAssets(), pixiWithoutEval()],
  // the largest chunk is tiled.ts (OpenSeadragon, Annotorious for it, pixi.js): loaded only for big images
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1000 },
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
});
