// OpenSeadragon over the server's Deep Zoom tiles, with Annotorious for OpenSeadragon on top: the
// canvas's surface for images too big for one <img> (see TILED_VIEWER_MIN_SIDE in canvas.ts).
// Imported on demand, so OpenSeadragon and its WebGL renderer load only when a big image is opened.
//
// Everything comes from our server: the DZI descriptor is fetched by XHR and the tiles as plain
// <img> requests (loadTilesWithAjax: false, crossOriginPolicy: false), both same-origin, so they
// carry the session cookie; OpenSeadragon's own buttons (images it would fetch from prefixUrl) are
// off: the pages' toolbar zooms and fits through the canvas. Its keyboard and mouse gestures are off
// too, so the keys, wheel and drag behave as on the plain canvas (the canvas binds them).
import { createOSDAnnotator } from "@annotorious/openseadragon";
import "@annotorious/openseadragon/annotorious-openseadragon.css";
import OpenSeadragon from "openseadragon";
import type { AnnotatorOptions, Annotator, ImageSource, Surface } from "./canvas";
import { h } from "./dom";

/** The deepest zoom, in screen pixels per image pixel (the plain canvas stops at 20). */
const MAX_ZOOM = 20;

export class TiledSurface implements Surface {
  readonly scrollsNatively = false;
  readonly annotator: Annotator;

  private constructor(
    private readonly viewer: OpenSeadragon.Viewer,
    private readonly host: HTMLElement,
    options: AnnotatorOptions,
  ) {
    this.annotator = createOSDAnnotator(viewer, options);
  }

  /** Open the image's DZI in a viewer filling ``viewport``; resolves once the descriptor is read. */
  static async open(viewport: HTMLElement, source: ImageSource, onZoom: (zoom: number) => void, options: AnnotatorOptions): Promise<TiledSurface> {
    const host = h("div", { class: "canvas-osd", "data-testid": "tiled-viewer" });
    viewport.replaceChildren(host);
    const viewer = OpenSeadragon({
      element: host,
      tileSources: source.dzi,
      prefixUrl: "",
      showNavigationControl: false,
      keyboardNavEnabled: false,
      loadTilesWithAjax: false,
      crossOriginPolicy: false,
      maxZoomPixelRatio: MAX_ZOOM,
      visibilityRatio: 0.2,
      animationTime: 0.4,
      gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: false, scrollToZoom: false, flickEnabled: false },
    });
    const imageZoom = () => viewer.viewport.viewportToImageZoom(viewer.viewport.getZoom()); // where it is going
    viewer.addHandler("zoom", () => onZoom(imageZoom()));
    try {
      await new Promise<void>((resolve, reject) => {
        viewer.addOnceHandler("open", () => resolve());
        viewer.addOnceHandler("open-failed", (e) => reject(new Error(`cannot open the image's tiles: ${e.message}`)));
      });
    } catch (err) {
      viewer.destroy();
      host.remove();
      throw err;
    }
    onZoom(imageZoom());
    return new TiledSurface(viewer, host, options);
  }

  fit(): void {
    this.viewer.viewport.goHome();
  }

  zoomBy(factor: number, clientX?: number, clientY?: number): void {
    const vp = this.viewer.viewport;
    let at: OpenSeadragon.Point | undefined;
    if (clientX !== undefined && clientY !== undefined) {
      const rect = this.host.getBoundingClientRect();
      at = vp.pointFromPixel(new OpenSeadragon.Point(clientX - rect.left, clientY - rect.top));
    }
    vp.zoomBy(factor, at);
    vp.applyConstraints();
  }

  panBy(dx: number, dy: number): void {
    const vp = this.viewer.viewport;
    vp.panBy(vp.deltaPointsFromPixels(new OpenSeadragon.Point(-dx, -dy)), true);
    vp.applyConstraints(true);
  }

  toImage(clientX: number, clientY: number): { x: number; y: number } {
    const rect = this.host.getBoundingClientRect();
    const p = this.viewer.viewport.viewerElementToImageCoordinates(new OpenSeadragon.Point(clientX - rect.left, clientY - rect.top));
    return { x: p.x, y: p.y };
  }

  destroy(): void {
    this.annotator.destroy();
    this.viewer.destroy();
    this.host.remove();
  }
}
