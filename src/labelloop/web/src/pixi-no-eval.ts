// PixiJS without `new Function`, so Annotorious for OpenSeadragon runs under our Content-Security-Policy
// (script-src 'self', no 'unsafe-eval'). It draws the annotations with a copy of PixiJS 7 bundled
// inside it, which compiles its WebGL uniform uploads with `new Function` and refuses to start when
// a policy forbids that. PixiJS's own answer, @pixi/unsafe-eval, swaps in a hand-written uniform sync
// on the ShaderSystem class of @pixi/core, a class the bundled copy does not share; so the build
// (vite.config.ts, pixiWithoutEval) calls patchShaderSystem with the bundled class, and this applies
// the same two changes as @pixi/unsafe-eval's install.mjs, with its syncUniforms.
// The relative path reaches a file the package's "exports" do not list; TypeScript finds its .d.ts.
import { syncUniforms } from "../node_modules/@pixi/unsafe-eval/lib/syncUniforms";

interface ShaderSystemLike {
  shader: { program: { uniformData: Parameters<typeof syncUniforms>[1] } };
  renderer: Parameters<typeof syncUniforms>[4];
}

export function patchShaderSystem(shaderSystem: { prototype: object }): void {
  Object.assign(shaderSystem.prototype, {
    systemCheck(): void {},
    syncUniforms(this: ShaderSystemLike, group: Parameters<typeof syncUniforms>[0], glProgram: { uniformData: Parameters<typeof syncUniforms>[2] }): void {
      syncUniforms(group, this.shader.program.uniformData, glProgram.uniformData, group.uniforms, this.renderer);
    },
  });
}
